/* Internal: the wire format between the host and an isolation helper process (a 4-byte
 * big-endian length, then a JSON object), shared by isolate.c (the parent's proxy) and
 * isolate_helper.c (the helper's main).  Not thread-safe per descriptor. */
#ifndef FR_CORE_ISOLATE_WIRE_H
#define FR_CORE_ISOLATE_WIRE_H

#include <stdint.h>

#include <json-c/json.h>

/* The helper's end of the socketpair. */
#define FR_HELPER_FD 3

/* Sends `o` (and releases it).  Returns 0, or -1 when the peer is gone. */
int fr__wire_send(int fd, json_object *o);
/* Reads one message; NULL on EOF, error or garbage.  Caller releases it. */
json_object *fr__wire_recv(int fd);
/* A string member, or NULL. */
const char *fr__wire_str(json_object *o, const char *key);
/* An integer member, or `def`. */
int64_t fr__wire_int(json_object *o, const char *key, int64_t def);
/* A new message {"op": op}. */
json_object *fr__wire_msg(const char *op);

#endif
