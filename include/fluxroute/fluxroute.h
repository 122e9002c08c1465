/* FluxRoute embedding API.  Placeholder until the engine lands. */
#ifndef FLUXROUTE_H
#define FLUXROUTE_H
#include <fluxroute/plugin.h>
#include <fluxroute/status.h>
#include <fluxroute/version.h>
#endif
