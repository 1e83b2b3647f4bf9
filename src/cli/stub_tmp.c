/* Temporary: commands not yet written. */
#include <stdio.h>
#include "cli/commands.h"
int cmd_ingest(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "not yet\n"); return 2; }
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int cmd_export(int argc, char **argv) { (void)argc; (void)argv; return 2; }
int cmd_demo(int argc, char **argv) { (void)argc; (void)argv; return 2; }
