/* The service's subcommands (implemented in cmd_serve.c), for the command table in
 * src/cli/main.c: serve, token, audit, feedback. Same conventions as cli/commands.h. */
#ifndef CLINFM_SERVE_SERVE_CMD_H
#define CLINFM_SERVE_SERVE_CMD_H

int cmd_serve(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_feedback(int argc, char **argv);

#endif
