/* Where clinfm finds material that is not in the command line.
 *
 * Two places, kept apart:
 * - External datasets (the MIMIC-IV demo, Synthea, OMOP GiBleed, PhysioNet sets, terminology
 *   maps) are never committed to clinfm; they are read where a site keeps them, named by one
 *   setting, CLINFM_DATA. Without it, `../shared/data` (beside the checkout, relative to the
 *   working directory) is used when it exists. Mapping files reach it as `${data}/...`.
 * - clinfm's own shipped files (de-identification rules `data/deid`, task files `tasks/`,
 *   mapping files `mappings/`) are found without flags: $CLINFM_SHARE, else beside the binary
 *   (an installed `PREFIX/bin/clinfm` reads `PREFIX/share/clinfm/`, a build tree's
 *   `build/clinfm` reads the checkout), else the folder compiled in at build time
 *   (CLINFM_SHAREDIR), else the working directory. The installed layout mirrors the checkout. */
#ifndef CLINFM_UTIL_DATADIR_H
#define CLINFM_UTIL_DATADIR_H

#include <stddef.h>

/* The external data directory: $CLINFM_DATA, else "../shared/data" when that is a directory,
 * else NULL (no data directory on this machine). The string is static. */
const char *cf_data_dir(void);

/* Resolves a shipped file or folder by its path in the checkout ("data/deid", "tasks/x.task")
 * into out. Returns 0 when found; otherwise out holds `rel` itself and -1 is returned, so a
 * caller's error message names what was looked for. */
int cf_share_path(const char *rel, char *out, size_t cap);

/* For a --task or --mapping argument: an existing path is kept; a bare name ("readmission_30d",
 * "mimic-iv") is looked up as `<dir>/<name><ext>` among the shipped files. */
void cf_share_resolve_named(const char *arg, const char *dir, const char *ext, char *out, size_t cap);

#endif
