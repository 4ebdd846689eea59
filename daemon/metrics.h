/* SPDX-License-Identifier: GPL-2.0-only */
/* The Prometheus node-exporter textfile: masd's counters and state, replaced atomically. */
#ifndef MAS_METRICS_H
#define MAS_METRICS_H

#include <stdio.h>

#include "daemon.h"

/* Write the metrics of d in the text exposition format to f. Returns 0 or a negative errno. */
int metrics_format(struct mas_daemon *d, FILE *f);

/* metrics_format into path, atomically (temp file + rename), mode 0644. */
int metrics_write(struct mas_daemon *d, const char *path);

#endif
