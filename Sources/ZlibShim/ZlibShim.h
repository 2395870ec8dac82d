// The system zlib, for reading gzip-compressed data.
#ifndef ZLIB_SHIM_H
#define ZLIB_SHIM_H

#include <zlib.h>

/// inflateInit2 is a macro over inflateInit2_, which Swift cannot call.
static inline int zlib_shim_inflate_init(z_stream *stream, int window_bits) {
    return inflateInit2(stream, window_bits);
}

#endif
