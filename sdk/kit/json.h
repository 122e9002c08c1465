/* json_scan.h: the plugins' fast JSON path.  A document is scanned once into a flat array
 * of tokens that point into its text (no tree, no allocation for small documents), read
 * with member and index look-ups, and written back with json-c's exact compact
 * formatting, so that text produced here is byte for byte what json-c would have written
 * (traces record request bodies as bytes; replays compare them).
 *
 * Reading: pj_scan() accepts strict JSON (RFC 8259) only; a caller holding text json-c
 * may read more leniently (NaN, comments, raw control characters) uses pj_scan_any(),
 * which has json-c rewrite such a document first, so both read the same values.
 *
 * Writing: pj_put_string() escapes like json-c with JSON_C_TO_STRING_NOSLASHESCAPE;
 * pj_put_value() writes a scanned value as json-c writes its parsed tree (plain, no slash
 * escapes): strings re-escaped, integers as int64, doubles in their original spelling,
 * duplicate keys once (first position, last value).  The rare values whose json-c form
 * is not plain to derive (-0, integers past 18 digits, lone surrogates) are handed to
 * json-c itself.
 *
 * Ownership: a pj_doc borrows its text (which must outlive it) and owns its tokens:
 * release with pj_free().  Not thread-safe per document; documents are independent.
 * The buffer (pu_buf) and json-c's glue come from plugin_util.h. */
#ifndef FR_JSON_SCAN_H
#define FR_JSON_SCAN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../plugins/plugin_util.h"

typedef enum pj_type {
    PJ_NULL,
    PJ_FALSE,
    PJ_TRUE,
    PJ_INT,    /* a number without fraction or exponent */
    PJ_DOUBLE, /* a number with either */
    PJ_STRING,
    PJ_ARRAY,
    PJ_OBJECT,
} pj_type;

#define PJ_ESCAPED  1u /* string: holds backslash escapes */
#define PJ_UNUSUAL  2u /* number or string json-c writes in a form of its own */
#define PJ_DUP_KEYS 4u /* object: some key appears twice */
#define PJ_REWRITE  8u /* string: holds an escape json-c writes differently (\/, \u00e9...) */

typedef struct pj_tok {
    uint32_t start, len; /* strings: the raw text between the quotes; others: the value */
    uint32_t next;       /* index of the token after this value (and its members) */
    uint16_t type;
    uint16_t flags;
} pj_tok;

#define PJ_INLINE_TOKENS 64
#define PJ_MAX_DEPTH     512

typedef struct pj_doc {
    const char *text;
    size_t len;
    pj_tok *tok; /* tok[0] is the document's value; object members are key, value pairs */
    uint32_t n, cap;
    char *owned; /* text rewritten by json-c (pj_scan_any), freed by pj_free */
    pj_tok inline_tok[PJ_INLINE_TOKENS];
} pj_doc;

void pj_free(pj_doc *d);

/* ---- scanning ------------------------------------------------------------------------- */

/* Scans len bytes of strict JSON (whitespace around the value allowed).  Returns 0, or -1
 * when the text is not one JSON value (or on OOM: d->n == 0 then is not told apart; both
 * mean "use json-c"). */
int pj_scan(pj_doc *d, const char *text, size_t len);

/* pj_scan, or for text json-c reads but strict JSON does not, json-c's rewrite of it.
 * Returns 0, or -1 when json-c cannot read it either (err says why, as json-c does). */
int pj_scan_any(pj_doc *d, const char *text, size_t len, char *err, size_t errlen);

/* ---- reading -------------------------------------------------------------------------- */

pj_type pj_type_of(const pj_doc *d, int i);

size_t pj_count(const pj_doc *d, int arr);

/* Walking an array's elements in order:
 *   for (int e = pj_first(d, arr); e >= 0; e = pj_next(d, arr, e)) ...
 * (pj_first is -1 for an empty array or a token that is not an array). */
int pj_first(const pj_doc *d, int arr);

int pj_next(const pj_doc *d, int arr, int e);

/* Element idx of array token arr, or -1. */
int pj_at(const pj_doc *d, int arr, size_t idx);

/* Appends the decoded text of string token i to out.  Returns 0, or -1 when i is not a
 * string. */
int pj_str(const pj_doc *d, int i, pu_buf *out);

/* Appends string token k decoded and cut at its first NUL, as C code reading json-c's
 * strings sees it (object keys, json_object_get_string + strlen). */
void pj_cstr(const pj_doc *d, int k, pu_buf *out);

/* The value of member `key` of object token obj (the last one, as json-c keeps), or -1. */
int pj_member(const pj_doc *d, int obj, const char *key);

/* Member `key` when it has type `type`, else -1. */
int pj_get(const pj_doc *d, int obj, const char *key, pj_type type);

/* Copies string token i (as pj_cstr reads it) into dst (size bytes, cut to fit).
 * Returns 1, or 0 (dst untouched) when i is not a string or on OOM. */
int pj_copy(const pj_doc *d, int i, char *dst, size_t size);

/* The decoded string token i as a new NUL-terminated heap string (caller frees), or NULL
 * (not a string, or OOM). */
char *pj_strdup(const pj_doc *d, int i);

/* Integer token i as int64 (json-c's json_object_get_int64 of it).  0 when not an int. */
int64_t pj_int64(const pj_doc *d, int i);

/* ---- writing (json-c's compact form) -------------------------------------------------- */

/* Appends s (n bytes) as a JSON string, escaped as json-c does (no slash escapes). */
void pj_put_string(pu_buf *out, const char *s, size_t n);

void pj_put_cstr(pu_buf *out, const char *s);

/* Appends v in decimal (what printf's %lld writes, without printf's cost). */
void pj_put_int64(pu_buf *out, int64_t v);

/* Writes string token i decoded and escaped again as json-c does; with cut, only up to its
 * first NUL (as json-c writes a C string read out of it). */
void pj_put_decoded(pu_buf *out, const pj_doc *d, int i, int cut);

/* Appends value token i as json-c would write it once parsed. */
void pj_put_value(pu_buf *out, const pj_doc *d, int i);

/* pj_put_value, or null for a missing value (tok < 0). */
void pj_put_value_or_null(pu_buf *out, const pj_doc *d, int tok);

#endif /* FR_JSON_SCAN_H */
