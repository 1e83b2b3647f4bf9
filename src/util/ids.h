/* Subject ids from string identifiers (FHIR Patient ids, MRN-like keys): a stable positive int64
 * taken from the first 8 bytes of BLAKE2b of the string. With 1e6 subjects the chance of any
 * collision is about 1e-7; the store writer refuses a collision rather than merge two people. */
#ifndef CLINFM_UTIL_IDS_H
#define CLINFM_UTIL_IDS_H

#include <stddef.h>
#include <stdint.h>

int64_t subject_id_from_string(const char *s, size_t len);

#endif
