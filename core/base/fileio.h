/* Reading a whole file into memory.  Thread-safe. */
#ifndef FR_CORE_FILEIO_H
#define FR_CORE_FILEIO_H

#include <stddef.h>

/* Reads the file at `path`.  Returns a NUL-terminated buffer (caller frees; it may hold
 * NULs: use *len, which may be NULL) or NULL with errno set (ENOMEM, or from fopen/fread). */
char *fr__file_read(const char *path, size_t *len);

#endif
