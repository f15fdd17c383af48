/* dist_int.h - private to the distributor module. */
#ifndef RT_DIST_INT_H
#define RT_DIST_INT_H

#include "distributor/distributor.h"

/* The distributor's configuration (borrowed; lives as long as d). */
const dist_config *dist_get_config(const dist_distributor *d);

/* Encodes tenant + req->wr's series and metadata as a ringtail.PushRequest into arena memory
 * (*out, *len), using the decoder's string lengths when req->info has them. Doubles are written
 * by their bits, so -0.0 survives. Borrows everything. */
rt_err dist_encode_push(const char *tenant, const dist_request *req, rt_arena *arena, uint8_t **out, size_t *len);

#endif
