/* dist_int.h - private to the distributor module. */
#ifndef RT_DIST_INT_H
#define RT_DIST_INT_H

#include "distributor/distributor.h"

/* The distributor's configuration (borrowed; lives as long as d). */
const dist_config *dist_get_config(const dist_distributor *d);

#endif
