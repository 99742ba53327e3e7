/* SPDX-License-Identifier: MIT */
/* `faultline cp`: copy an object between a file and a store URL. */
#ifndef FAULTLINE_CP_H
#define FAULTLINE_CP_H

#include <stdio.h>

/* Run cp with its own arguments (argv[0] is "cp").  Returns the exit
 * status: 0 copied, 1 failed, 2 bad usage. */
int cp_main(int argc, char **argv);

/* Print cp's usage to f. */
void cp_usage(FILE *f);

#endif /* FAULTLINE_CP_H */
