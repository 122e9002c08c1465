/* The shared libraries a plugin file depends on, read from the files (DT_NEEDED,
 * transitively), for `plugins test`'s check of what those libraries call. */
#ifndef FR_PLUGIN_PLUGIN_LIBRARIES_H
#define FR_PLUGIN_PLUGIN_LIBRARIES_H

#include <stddef.h>

/* At most this many libraries are scanned (a plugin linking more is reported short). */
#define FR_PLUGIN_LIBRARIES_MAX 64

/* Walks the DT_NEEDED libraries of the plugin at `path`, and theirs, breadth first, each
 * once, leaving out the C runtime (libc, libm, libpthread, libdl, librt, libresolv,
 * the dynamic linker, libgcc_s), sanitizer runtimes and the host's own libfluxroute.  A
 * library is found among the objects already loaded in this process (load the plugin
 * first, as the loader does, so its dependencies are mapped); one that is not loaded is
 * listed with " (not loaded)" and not read.  Calls fn(library, symbol, ud) for each
 * undefined symbol of each library read.  Writes the libraries' names, comma-separated,
 * to libs.  Returns how many libraries were read, or -1 with a reason in err (the plugin
 * file or a library could not be read as ELF).  Not thread-safe against concurrent
 * dlopen/dlclose in the process (it walks the loaded objects). */
int fr__plugin_libraries_each_import(const char *path,
                                     void (*fn)(const char *lib, const char *sym, void *ud),
                                     void *ud, char *libs, size_t libs_len, char *err,
                                     size_t errlen);

#endif
