/*-------------------------------------------------------------------------
 *
 * json_compat.h
 *	  Include jansson through this header, never directly.
 *
 * The PostgreSQL server exports a C function named json_object (the SQL
 * function json_object(text[])).  When this library is loaded into the
 * server, the dynamic linker binds our calls of jansson's json_object() to
 * the server's symbol, which fails with "wrong number of array subscripts"
 * (or worse).  jansson binds its own internal calls directly, so only our
 * calls need to avoid the name: json_pack("{}") builds the same empty object.
 *
 *-------------------------------------------------------------------------
 */
#ifndef AUTOHA_JSON_COMPAT_H
#define AUTOHA_JSON_COMPAT_H

#include <jansson.h>

static inline json_t *
autoha_json_object(void)
{
	return json_pack("{}");
}

#define json_object() autoha_json_object()

#endif							/* AUTOHA_JSON_COMPAT_H */
