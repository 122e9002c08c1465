/* Reading an ELF shared object's dynamic symbol table and its DT_NEEDED entries from the
 * file (not through the dynamic loader), for `plugins test`'s check of direct calls. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/elf_symbols.h"

/* A mapped file and its checked section header table. */
typedef struct elf_file {
    const unsigned char *base;
    size_t size;
    const Elf64_Ehdr *eh;
    const Elf64_Shdr *sh;
} elf_file;

static int elf_open(elf_file *f, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    f->size = (size_t)st.st_size;
    const unsigned char *base = f->size >= sizeof(Elf64_Ehdr)
                                    ? mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0)
                                    : MAP_FAILED;
    close(fd);
    if (base == MAP_FAILED) {
        snprintf(err, errlen, "%s: not an ELF file", path);
        return -1;
    }
    f->base = base;
    f->eh = (const Elf64_Ehdr *)base;
    const Elf64_Ehdr *eh = f->eh;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) {
        snprintf(err, errlen, "not a 64-bit ELF file");
        goto fail;
    }
    /* The tables are read in place: offsets must also be aligned for their types. */
    if (eh->e_shoff == 0 || eh->e_shoff % _Alignof(Elf64_Shdr) != 0 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > f->size ||
        (f->size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum) {
        snprintf(err, errlen, "no readable section headers");
        goto fail;
    }
    f->sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    return 0;
fail:
    munmap((void *)base, f->size);
    return -1;
}

static void elf_close(elf_file *f)
{
    munmap((void *)f->base, f->size);
}

/* The first section of `type` with in-bounds, aligned entries of `entsize` and an
 * in-bounds string table (sh_link); NULL with a reason in err. */
static const Elf64_Shdr *elf_table(const elf_file *f, unsigned type, size_t entsize, size_t align,
                                   const char *what, const char **strtab, size_t *strsize,
                                   char *err, size_t errlen)
{
    for (size_t i = 0; i < f->eh->e_shnum; i++) {
        const Elf64_Shdr *s = &f->sh[i];
        if (s->sh_type != type)
            continue;
        if (s->sh_link >= f->eh->e_shnum || s->sh_offset > f->size ||
            s->sh_size > f->size - s->sh_offset || s->sh_entsize != entsize ||
            s->sh_offset % align != 0) {
            snprintf(err, errlen, "malformed %s section", what);
            return NULL;
        }
        const Elf64_Shdr *str = &f->sh[s->sh_link];
        if (str->sh_offset > f->size || str->sh_size > f->size - str->sh_offset) {
            snprintf(err, errlen, "malformed string table of %s", what);
            return NULL;
        }
        *strtab = (const char *)f->base + str->sh_offset;
        *strsize = str->sh_size;
        return s;
    }
    snprintf(err, errlen, "no %s section", what);
    return NULL;
}

/* The NUL-terminated string at `off` of the table, or NULL. */
static const char *elf_string(const char *strtab, size_t strsize, size_t off)
{
    if (off == 0 || off >= strsize || !memchr(strtab + off, '\0', strsize - off))
        return NULL;
    return strtab + off;
}

int fr__elf_each_undefined_symbol(const char *path, void (*fn)(const char *, void *), void *ud,
                                  char *err, size_t errlen)
{
    elf_file f;
    if (elf_open(&f, path, err, errlen) != 0)
        return -1;
    const char *strtab;
    size_t strsize;
    const Elf64_Shdr *sym = elf_table(&f, SHT_DYNSYM, sizeof(Elf64_Sym), _Alignof(Elf64_Sym),
                                      ".dynsym", &strtab, &strsize, err, errlen);
    if (sym) {
        const Elf64_Sym *syms = (const Elf64_Sym *)(f.base + sym->sh_offset);
        size_t n = sym->sh_size / sizeof(Elf64_Sym);
        for (size_t j = 1; j < n; j++) {
            const char *name =
                syms[j].st_shndx == SHN_UNDEF ? elf_string(strtab, strsize, syms[j].st_name) : NULL;
            if (name)
                fn(name, ud);
        }
    }
    elf_close(&f);
    return sym ? 0 : -1;
}

int fr__elf_each_needed(const char *path, void (*fn)(const char *, void *), void *ud, char *err,
                        size_t errlen)
{
    elf_file f;
    if (elf_open(&f, path, err, errlen) != 0)
        return -1;
    const char *strtab;
    size_t strsize;
    const Elf64_Shdr *dyn = elf_table(&f, SHT_DYNAMIC, sizeof(Elf64_Dyn), _Alignof(Elf64_Dyn),
                                      ".dynamic", &strtab, &strsize, err, errlen);
    if (dyn) {
        const Elf64_Dyn *d = (const Elf64_Dyn *)(f.base + dyn->sh_offset);
        size_t n = dyn->sh_size / sizeof(Elf64_Dyn);
        for (size_t j = 0; j < n && d[j].d_tag != DT_NULL; j++) {
            const char *name =
                d[j].d_tag == DT_NEEDED ? elf_string(strtab, strsize, d[j].d_un.d_val) : NULL;
            if (name)
                fn(name, ud);
        }
    }
    elf_close(&f);
    return dyn ? 0 : -1;
}
