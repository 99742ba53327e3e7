/* SPDX-License-Identifier: MIT */
/* `faultline demo`: map a data file shared and private, check every byte. */
#ifndef FAULTLINE_DEMO_H
#define FAULTLINE_DEMO_H

#include <stdio.h>

/* Run the demo with its own arguments (argv[0] is "demo").  Returns the
 * exit status: 0 when every check passed, 1 on a failure, 2 on bad usage. */
int demo_main(int argc, char **argv);

/* Print the demo's usage to f. */
void demo_usage(FILE *f);

#endif /* FAULTLINE_DEMO_H */
