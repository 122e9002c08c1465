/* Test plugin: a shared object that exports something, but not fluxroute_plugin_v1. */
#include <fluxroute/plugin.h>

FR_PLUGIN_EXPORT int fluxroute_plugin_v0(void)
{
    return 42;
}
