/* Unit tests of the ELF symbol-table reader (core/plugin/elf_symbols.c) that `plugins test`
 * uses to find direct calls: the undefined symbols of a real plugin, and copies of it
 * cut short or with header fields overwritten, which must be refused with a reason (or
 * read), never read out of bounds. */
#include <CUnit/Basic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fr_test.h"
#include "plugin/elf_symbols.h"
#include "base/fileio.h"

static char g_plugin[1024]; /* tests/plugins/.libs/bad_calls.so of the build tree */
static char g_copy[1100];   /* this run's scratch copy */

typedef struct names {
    int time, sleep, entry;
    size_t n;
} names;

static void note(const char *name, void *ud)
{
    names *n = ud;
    n->n++;
    n->time += strcmp(name, "time") == 0;
    n->sleep += strcmp(name, "sleep") == 0;
    /* The plugin defines its entry point: it is never among the undefined symbols. */
    n->entry += strcmp(name, "fluxroute_plugin_v1") == 0;
}

static void write_copy(const unsigned char *data, size_t len)
{
    FILE *f = fopen(g_copy, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Reads the copy: either a table was read or a reason was given. */
static void read_copy_safely(void)
{
    names n = {0};
    char err[256] = "";
    int rc = fr__elf_each_undefined_symbol(g_copy, note, &n, err, sizeof err);
    CU_ASSERT(rc == 0 || rc == -1);
    if (rc != 0)
        CU_ASSERT(err[0] != '\0');
    err[0] = '\0';
    rc = fr__elf_each_needed(g_copy, note, &n, err, sizeof err);
    CU_ASSERT(rc == 0 || rc == -1);
    if (rc != 0)
        CU_ASSERT(err[0] != '\0');
}

typedef struct needed {
    int json_c, libc;
    size_t n;
} needed;

static void note_needed(const char *name, void *ud)
{
    needed *n = ud;
    n->n++;
    n->json_c += strncmp(name, "libjson-c.so.", 13) == 0;
    n->libc += strcmp(name, "libc.so.6") == 0;
}

/* The llm plugin links json-c: its DT_NEEDED entries name it and libc, each once. */
static void test_needed_of_real_plugin(void)
{
    const char *b = getenv("FR_BUILDDIR");
    char path[1100];
    snprintf(path, sizeof path, "%s/plugins/llm.so", b ? b : ".");
    needed n = {0};
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(fr__elf_each_needed(path, note_needed, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL(n.json_c, 1);
    CU_ASSERT_EQUAL(n.libc, 1);
    CU_ASSERT(n.n >= 2);
    CU_ASSERT_EQUAL(fr__elf_each_needed("/nonexistent.so", note_needed, &n, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "/nonexistent.so: No such file");
}

static void test_real_plugin(void)
{
    names n = {0};
    char err[256] = "";
    CU_ASSERT_EQUAL_FATAL(fr__elf_each_undefined_symbol(g_plugin, note, &n, err, sizeof err), 0);
    CU_ASSERT_EQUAL(n.time, 1);
    CU_ASSERT_EQUAL(n.sleep, 1);
    CU_ASSERT_EQUAL(n.entry, 0);
    CU_ASSERT(n.n >= 2);
}

static void test_not_elf(void)
{
    char err[256] = "";
    names n = {0};
    CU_ASSERT_EQUAL(fr__elf_each_undefined_symbol("/nonexistent/x.so", note, &n, err, sizeof err),
                    -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "/nonexistent/x.so"));
    const char text[] = "this is not an ELF file, but it is longer than an ELF header is..";
    write_copy((const unsigned char *)text, sizeof text);
    CU_ASSERT_EQUAL(fr__elf_each_undefined_symbol(g_copy, note, &n, err, sizeof err), -1);
    CU_ASSERT_STRING_EQUAL(err, "not a 64-bit ELF file");
    write_copy((const unsigned char *)"\177ELF", 4); /* shorter than a header */
    CU_ASSERT_EQUAL(fr__elf_each_undefined_symbol(g_copy, note, &n, err, sizeof err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not an ELF file"));
    CU_ASSERT_EQUAL(n.n, 0);
}

/* Every length cut short: refused or read, within bounds. */
static void test_truncated(void)
{
    size_t size = 0;
    unsigned char *data = (unsigned char *)fr__file_read(g_plugin, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    for (size_t len = 0; len < size; len += len < 256 ? 1 : 97) {
        write_copy(data, len);
        read_copy_safely();
    }
    free(data);
}

/* Header and section-header bytes overwritten with awkward values. */
static void test_corrupted_headers(void)
{
    size_t size = 0;
    unsigned char *data = (unsigned char *)fr__file_read(g_plugin, &size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(data);
    CU_ASSERT_FATAL(size > 64);
    uint64_t shoff = 0;
    uint16_t shnum = 0;
    memcpy(&shoff, data + 0x28, sizeof shoff);
    memcpy(&shnum, data + 0x3c, sizeof shnum);
    CU_ASSERT_FATAL(shoff < size && shnum > 0);
    size_t sh_end = shoff + (size_t)shnum * 64 <= size ? shoff + (size_t)shnum * 64 : size;
    const unsigned char values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    unsigned char *copy = malloc(size);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    size_t cases = 0;
    for (size_t at = 0; at < sh_end; at++) {
        if (at == 64)
            at = shoff; /* from the ELF header to the section headers */
        for (size_t v = 0; v < sizeof values; v++) {
            if (data[at] == values[v])
                continue;
            memcpy(copy, data, size);
            copy[at] = values[v];
            write_copy(copy, size);
            read_copy_safely();
            cases++;
        }
    }
    CU_ASSERT(cases > 1000);
    free(copy);
    free(data);
}

int main(void)
{
    const char *b = getenv("FR_BUILDDIR");
    snprintf(g_plugin, sizeof g_plugin, "%s/tests/plugins/.libs/bad_calls.so", b ? b : ".");
    char dir[1040];
    snprintf(dir, sizeof dir, "%s/tests/tmp", b ? b : ".");
    mkdir(dir, 0755); /* may exist */
    snprintf(g_copy, sizeof g_copy, "%s/elf-symbols-%ld.so", dir, (long)getpid());
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("elf_symbols", NULL, NULL);
    if (!s || !CU_add_test(s, "the undefined symbols of a real plugin", test_real_plugin) ||
        !CU_add_test(s, "missing and non-ELF files", test_not_elf) ||
        !CU_add_test(s, "the libraries a real plugin needs", test_needed_of_real_plugin) ||
        !CU_add_test(s, "every truncation", test_truncated) ||
        !CU_add_test(s, "corrupted header bytes", test_corrupted_headers)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures();
    CU_cleanup_registry();
    unlink(g_copy);
    return failed ? 1 : 0;
}
