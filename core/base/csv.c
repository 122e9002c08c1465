/* CSV cells: RFC 4180 quoting and formula neutralisation (see csv.h). */
#include "base/csv.h"

int fr__csv_is_formula(const char *v)
{
    switch (v[0]) {
    case '=':
    case '+':
    case '-':
    case '@':
    case '\t':
    case '\r': return 1;
    default: break;
    }
    /* Full-width = + - @ (U+FF1D, U+FF0B, U+FF0D, U+FF20): some spreadsheets fold them to
     * their ASCII forms before reading a formula. */
    const unsigned char *u = (const unsigned char *)v;
    return u[0] == 0xEF && ((u[1] == 0xBC && (u[2] == 0x9D || u[2] == 0x8B || u[2] == 0x8D)) ||
                            (u[1] == 0xBC && u[2] == 0xA0));
}

static void cell(fr_bytebuf *b, const char *v, int neutralise)
{
    size_t n = strlen(v);
    int quote =
        neutralise || strpbrk(v, ",\"\r\n") != NULL || (n && (v[0] == ' ' || v[n - 1] == ' '));
    if (!quote) {
        fr__bytebuf_append(b, v, n);
        return;
    }
    fr__bytebuf_append(b, neutralise ? "\"'" : "\"", neutralise ? 2 : 1);
    for (const char *q = v, *run = v;; q++) {
        if (*q == '"' || !*q) {
            fr__bytebuf_append(b, run, (size_t)(q - run + (*q == '"')));
            if (!*q)
                break;
            fr__bytebuf_append(b, "\"", 1); /* a quote is doubled */
            run = q + 1;
        }
    }
    fr__bytebuf_append(b, "\"", 1);
}

void fr__csv_cell(fr_bytebuf *b, const char *v)
{
    cell(b, v, fr__csv_is_formula(v));
}

void fr__csv_plain(fr_bytebuf *b, const char *v)
{
    cell(b, v, 0);
}
