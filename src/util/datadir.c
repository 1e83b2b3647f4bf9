/* Resolution of CLINFM_DATA (see datadir.h). */
#include "util/datadir.h"

#include <stdlib.h>
#include <sys/stat.h>

const char *cf_data_dir(void) {
    const char *env = getenv("CLINFM_DATA");
    if (env && *env) return env;
    struct stat st;
    if (stat("../shared/data", &st) == 0 && S_ISDIR(st.st_mode)) return "../shared/data";
    return NULL;
}
