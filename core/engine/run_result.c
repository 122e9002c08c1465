/* Names of the states in a run result (core/engine/engine.h), shared by the report and the
 * observability hooks: below both. */
#include "engine/engine.h"

const char *fr__step_state_name(fr_step_state s)
{
    switch (s) {
    case FR_STEP_SUCCEEDED: return "succeeded";
    case FR_STEP_FAILED: return "failed";
    case FR_STEP_SKIPPED: return "skipped";
    case FR_STEP_RUNNING: return "running";
    case FR_STEP_PENDING: break;
    }
    return "pending";
}

const char *fr__run_status_name(fr_run_status s)
{
    switch (s) {
    case FR_RUN_SUCCEEDED: return "succeeded";
    case FR_RUN_FAILED: return "failed";
    case FR_RUN_CANCELLED: return "cancelled";
    }
    return "failed";
}
