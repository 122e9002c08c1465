/* Internal: marks public API definitions for export from libfluxroute. */
#ifndef FR_CORE_API_H
#define FR_CORE_API_H
#define FR_API __attribute__((visibility("default")))
#endif
