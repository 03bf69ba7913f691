/*
 * fuzz_s3_xml.c - libFuzzer target: any bytes as an S3 answer (make fuzz).
 *
 * The input is read as be_s3.c reads every answer: parsed (s3_xml_parse),
 * its error fields, a listing's <Contents>, multipart <Upload>s and <Part>s
 * with their fields; and the same bytes as a Retry-After value.  Besides
 * what AddressSanitizer and UBSan catch, it aborts when a reader breaks its
 * word (s3_err.h): a field that does not fit says so, a field that fits a
 * small buffer reads the same in a large one, "" when not found.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/s3_err.h"

static const char *const fields[] = {
	"Code", "Message", "Key", "Size", "UploadId", "PartNumber", "ETag", "IsTruncated",
	"NextContinuationToken", "NextPartNumberMarker",
};
static const char *const blocks[] = { "Contents", "Upload", "Part", "Error" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void read_fields(const xmlNode *e)
{
	char small[8], big[1200];
	size_t i;

	for (i = 0; i < N(fields); i++) {
		int a = s3_xml_get(e, fields[i], big, sizeof(big));
		int b = s3_xml_get(e, fields[i], small, sizeof(small));

		if (a < -1 || a > 1 || (a != 1 && big[0]) || (b != 1 && small[0]))
			abort();
		if (a == 1 && strlen(big) >= sizeof(big))
			abort();
		if ((a == 0) != (b == 0) || (b == 1 && (a != 1 || strcmp(small, big) != 0)))
			abort();
		if (b == -1 && a == 1 && strlen(big) < sizeof(small))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	xmlNode *root = s3_xml_parse((const char *)data, size), *b;
	char *text;
	size_t i;

	if (root) {
		read_fields(root);
		for (i = 0; i < N(blocks); i++)
			for (b = NULL; (b = s3_xml_child(root, b, blocks[i]));) {
				if (!s3_xml_is(b, blocks[i]) || b->parent != root)
					abort();
				read_fields(b);
			}
		s3_xml_free(root);
	}
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (s3_retry_after_ms(text, 1445412480L) < -1)
		abort();
	free(text);
	return 0;
}
