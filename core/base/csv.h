/* CSV cells (RFC 4180) for the exports people open in spreadsheets: the audit log export
 * and the control plane's invoices.
 *
 * A cell whose text comes from outside (a model name, a manifest path, an actor) and
 * starts with a character a spreadsheet reads as the start of a formula (= + - @, a tab or
 * a carriage return, or their full-width forms) is neutralised as OWASP's "CSV injection"
 * advice says: prefixed with a single quote and quoted, so Excel, LibreOffice and Google
 * Sheets show it as text and never run it.  Values the program made itself (numbers,
 * amounts) go through fr__csv_plain and are never altered. */
#ifndef FR_CORE_CSV_H
#define FR_CORE_CSV_H

#include "base/bytebuf.h"

/* Appends `v` (NUL-terminated, borrowed) as one cell: neutralised when it could be read as
 * a formula, quoted when it holds a comma, quote, CR or LF, a leading or trailing space,
 * or was neutralised (quotes doubled).  Thread-safe (no state). */
void fr__csv_cell(fr_bytebuf *b, const char *v);

/* Appends `v` as one cell with RFC 4180 quoting only: for values the program produced. */
void fr__csv_plain(fr_bytebuf *b, const char *v);

/* 1 when a spreadsheet would take `v` as a formula (what fr__csv_cell neutralises). */
int fr__csv_is_formula(const char *v);

#endif
