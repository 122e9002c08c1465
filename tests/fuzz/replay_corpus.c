/* Replays every input of a fuzz corpus (FR_CORPUS, a directory under tests/fuzz) through
 * its fuzz target with the normal build, so `make check` (and its sanitizer run) catches
 * regressions without clang.  Linked once per target: test_trace_corpus with
 * fuzz_trace.c, test_journal_corpus with fuzz_journal.c, test_manifest_corpus with
 * fuzz_manifest.c, test_provider_corpus with
 * fuzz_provider.c, test_serve_corpus with fuzz_serve.c. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FR_CORPUS
#error "FR_CORPUS names the corpus directory under tests/fuzz"
#endif

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The whole file at path in *buf (malloc'd); returns -1 when it cannot be read. */
static int read_whole(const char *path, char **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    FILE *mem = open_memstream(buf, len);
    if (!mem) {
        fclose(f);
        return -1;
    }
    char chunk[65536];
    size_t k;
    while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
        fwrite(chunk, 1, k, mem);
    fclose(f);
    return fclose(mem) == 0 ? 0 : -1;
}

int main(void)
{
    const char *src = getenv("FR_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", src ? src : ".", FR_CORPUS);
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 1;
    }
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        char *buf = NULL;
        size_t len = 0;
        if (read_whole(path, &buf, &len) != 0) {
            fprintf(stderr, "cannot read %s\n", path);
            free(buf);
            closedir(d);
            return 1;
        }
        LLVMFuzzerTestOneInput((const unsigned char *)buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    printf("%s: %zu corpus inputs, no crash\n", FR_CORPUS, n);
    return n > 0 ? 0 : 1;
}
