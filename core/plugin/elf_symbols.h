/* ELF symbol tables and library dependencies read from the file. */
#ifndef FR_ELF_SYMBOLS_H
#define FR_ELF_SYMBOLS_H

#include <stddef.h>

/* Calls fn(name, ud) for each undefined symbol of the 64-bit ELF file's .dynsym (the
 * functions it expects from elsewhere), with names that live only during the call.
 * Returns 0, or -1 with a reason in err (a file that cannot be read, is not a 64-bit ELF
 * file, or has malformed sections: every offset is checked against the file's size,
 * and the tables read in place against their types' alignment).
 * Thread-safe: it maps the file privately and keeps no state. */
int fr__elf_each_undefined_symbol(const char *path, void (*fn)(const char *, void *), void *ud,
                                  char *err, size_t errlen);

/* Calls fn(name, ud) for each DT_NEEDED entry of the file's .dynamic section (the
 * libraries it names, "libjson-c.so.5"), in order, with names that live only during the
 * call.  Returns 0, or -1 with a reason in err, checked as above.  Thread-safe likewise. */
int fr__elf_each_needed(const char *path, void (*fn)(const char *, void *), void *ud, char *err,
                        size_t errlen);

#endif
