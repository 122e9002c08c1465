/* FluxRoute version and plugin ABI version.
 * Since ABI 1.0. */
#ifndef FLUXROUTE_VERSION_H
#define FLUXROUTE_VERSION_H

#define FR_VERSION_MAJOR  0
#define FR_VERSION_MINOR  1
#define FR_VERSION_PATCH  0
#define FR_VERSION_STRING "0.1.0"

/* Plugin ABI.  A plugin built against ABI major M loads into a host of the same major;
 * minor versions only append fields (the host checks struct_size before reading one).
 * A host accepts every minor of its major, older and newer: a plugin of a newer minor
 * checks FR_HOST_HAS before using a host function its host may lack.
 *   1.0  the first ABI.
 *   1.1  fr_plugin.option_size (option tables walked by the plugin's row size) and
 *        fr_host_api.http_ex (the response struct's size passed along), so that
 *        fr_option and fr_http_response can grow in later minors. */
#define FR_ABI_MAJOR              1
#define FR_ABI_MINOR              2
#define FR_ABI_MAKE(major, minor) ((unsigned)(((major) << 16) | (minor)))
#define FR_ABI_VERSION            FR_ABI_MAKE(FR_ABI_MAJOR, FR_ABI_MINOR)
#define FR_ABI_VERSION_MAJOR(v)   ((unsigned)(v) >> 16)
#define FR_ABI_VERSION_MINOR(v)   ((unsigned)(v)&0xffffu)

#endif /* FLUXROUTE_VERSION_H */
