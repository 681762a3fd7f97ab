/*
 * unit.h — a tiny TAP producer for the C unit tests (run under prove).
 */
#ifndef AUTOHA_UNIT_H
#define AUTOHA_UNIT_H

#include <stdio.h>
#include <string.h>

static int	unit_count = 0;
static int	unit_failed = 0;

/* cond is evaluated exactly once */
#define UNIT_OK(cond, ...) \
	do { \
		int			ok_ = (cond) ? 1 : 0; \
		unit_count++; \
		if (!ok_) \
			unit_failed++; \
		printf("%s %d - ", ok_ ? "ok" : "not ok", unit_count); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!ok_) \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	} while (0)

#define UNIT_STR_EQ(got, want, ...) \
	do { \
		const char *g_ = (got), *w_ = (want); \
		int			same_ = g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0; \
		UNIT_OK(same_, __VA_ARGS__); \
		if (!same_) \
			printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} while (0)

#define UNIT_DONE() \
	do { \
		printf("1..%d\n", unit_count); \
		return unit_failed == 0 ? 0 : 1; \
	} while (0)

#endif
