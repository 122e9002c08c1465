/* Reading an ELF shared object's dynamic symbol table from the file (not through the
 * dynamic loader), for `plugins test`'s check of direct calls. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/elf_symbols.h"

int fr__elf_each_undefined_symbol(const char *path, void (*fn)(const char *, void *), void *ud,
                                  char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    const unsigned char *base =
        size >= sizeof(Elf64_Ehdr) ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (base == MAP_FAILED) {
        snprintf(err, errlen, "%s: not an ELF file", path);
        return -1;
    }
    int rc = -1;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)base;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) {
        snprintf(err, errlen, "not a 64-bit ELF file");
        goto out;
    }
    /* The tables are read in place: offsets must also be aligned for their types. */
    if (eh->e_shoff == 0 || eh->e_shoff % _Alignof(Elf64_Shdr) != 0 ||
        eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > size ||
        (size - eh->e_shoff) / sizeof(Elf64_Shdr) < eh->e_shnum) {
        snprintf(err, errlen, "no readable section headers");
        goto out;
    }
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(base + eh->e_shoff);
    for (size_t i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_DYNSYM)
            continue;
        const Elf64_Shdr *sym = &sh[i];
        if (sym->sh_link >= eh->e_shnum || sym->sh_offset > size ||
            sym->sh_size > size - sym->sh_offset || sym->sh_entsize != sizeof(Elf64_Sym) ||
            sym->sh_offset % _Alignof(Elf64_Sym) != 0) {
            snprintf(err, errlen, "malformed .dynsym section");
            goto out;
        }
        const Elf64_Shdr *str = &sh[sym->sh_link];
        if (str->sh_offset > size || str->sh_size > size - str->sh_offset) {
            snprintf(err, errlen, "malformed .dynstr section");
            goto out;
        }
        const char *strtab = (const char *)base + str->sh_offset;
        const Elf64_Sym *syms = (const Elf64_Sym *)(base + sym->sh_offset);
        size_t n = sym->sh_size / sizeof(Elf64_Sym);
        for (size_t j = 1; j < n; j++) {
            if (syms[j].st_shndx != SHN_UNDEF || syms[j].st_name == 0 ||
                syms[j].st_name >= str->sh_size)
                continue;
            const char *name = strtab + syms[j].st_name;
            if (memchr(name, '\0', str->sh_size - syms[j].st_name))
                fn(name, ud);
        }
        rc = 0;
        goto out;
    }
    snprintf(err, errlen, "no .dynsym section");
out:
    munmap((void *)base, size);
    return rc;
}
