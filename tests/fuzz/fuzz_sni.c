// SPDX-License-Identifier: MIT
/* libFuzzer harness for the ClientHello SNI parser: any bytes give a verdict
 * without reading out of bounds; a name found is a valid lower-case host
 * name; and a verdict never rests on part of a hello (a prefix of the input
 * gives the same verdict or asks for more). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sni.h"

static void check_host_name(const char *name)
{
	size_t len = strlen(name), label = 0;

	if (len == 0 || len > DT_SNI_MAX)
		abort();
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];

		if (ch == '.') {
			if (label == 0)
				abort();
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
			label++;
		} else {
			abort();
		}
	}
	if (label == 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[DT_SNI_MAX + 1], prefix_name[DT_SNI_MAX + 1];
	enum dt_sni_result whole = dt_sni_parse(data, size, name, sizeof(name));
	enum dt_sni_result prefix = dt_sni_parse(data, size / 2, prefix_name, sizeof(prefix_name));

	if (whole == DT_SNI_FOUND)
		check_host_name(name);
	if (prefix != DT_SNI_NEED_MORE && prefix != whole)
		abort();
	if (prefix == DT_SNI_FOUND && strcmp(prefix_name, name) != 0)
		abort();
	return 0;
}
