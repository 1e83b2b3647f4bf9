/* Where clinfm finds material it does not ship.
 *
 * Public datasets (the MIMIC-IV demo, Synthea, OMOP GiBleed, PhysioNet sets, terminology maps)
 * are never committed to clinfm; they are read where a site keeps them, named by one setting,
 * CLINFM_DATA. Without it, `../shared/data` (beside the checkout, relative to the working
 * directory) is used when it exists. Mapping files reach it as `${data}/...`. */
#ifndef CLINFM_UTIL_DATADIR_H
#define CLINFM_UTIL_DATADIR_H

#include <stddef.h>

/* The external data directory: $CLINFM_DATA, else "../shared/data" when that is a directory,
 * else NULL (no data directory on this machine). The string is static. */
const char *cf_data_dir(void);

#endif
