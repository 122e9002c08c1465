/* Replays every input of the fuzz corpus (tests/fuzz/corpus) through the trace parser
 * with the normal build, so `make check` catches regressions without clang. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int main(void)
{
    const char *src = getenv("FR_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 1;
    }
    size_t n = 0, parsed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f)
            continue;
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        char chunk[65536];
        size_t k;
        while ((k = fread(chunk, 1, sizeof chunk, f)) > 0)
            fwrite(chunk, 1, k, mem);
        fclose(f);
        fclose(mem);
        char err[512];
        json_object *t = fr__trace_parse(buf, len, err, sizeof err);
        parsed += t != NULL;
        json_object_put(t);
        LLVMFuzzerTestOneInput((const unsigned char *)buf, len);
        free(buf);
        n++;
    }
    closedir(d);
    printf("%zu corpus inputs, %zu valid traces: no crash\n", n, parsed);
    return n > 0 ? 0 : 1;
}
