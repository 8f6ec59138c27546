// SPDX-License-Identifier: MIT
/* Request traits: what a request needs (tools, images, JSON output, a
 * window) read alike from OpenAI, Anthropic and Gemini requests, the
 * prompt estimate, and the conversation hash that a follow-up turn
 * repeats. Fixtures are written with ' for " (none holds an apostrophe). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "traits.h"

#define O DT_FAMILY_OPENAI
#define A DT_FAMILY_ANTHROPIC
#define G DT_FAMILY_GEMINI

/* The needs of a request in shape `shape` (' for "), sent by app. */
static struct dt_route_needs needs_of(enum dt_family shape, const char *fixture, const char *app)
{
	char body[4096], err[256];
	struct dt_xrequest r;
	struct dt_route_needs n;
	size_t len = strlen(fixture);

	assert_true(len < sizeof(body));
	for (size_t i = 0; i <= len; i++)
		body[i] = fixture[i] == '\'' ? '"' : fixture[i];
	if (dt_xreq_parse(shape, body, len, shape == G ? "gemini-x" : NULL, false, &r, err,
			  sizeof(err)))
		fail_msg("parse: %s\n%s", err, body);
	dt_traits_of(&r, app, &n);
	dt_xreq_free(&r);
	return n;
}

static unsigned caps_of(enum dt_family shape, const char *fixture)
{
	return needs_of(shape, fixture, "-").caps;
}

static void test_plain_text_needs_nothing(void **state)
{
	(void)state;
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':'Hi'}]}"), 0);
	assert_int_equal(caps_of(A, "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'Hi'}]}"), 0);
	assert_int_equal(caps_of(G, "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}]}"), 0);
}

static void test_tools(void **state)
{
	(void)state;
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':'Hi'}],"
				    "'tools':[{'type':'function','function':{'name':'f'}}]}"), DT_CAP_TOOLS);
	/* offered but not to be called: the tools still go to the model */
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':'Hi'}],"
				    "'tools':[{'type':'function','function':{'name':'f'}}],'tool_choice':'none'}"),
			 DT_CAP_TOOLS);
	assert_int_equal(caps_of(A, "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':'Hi'}],"
				    "'tools':[{'name':'f','input_schema':{'type':'object'}}]}"), DT_CAP_TOOLS);
	assert_int_equal(caps_of(G, "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],"
				    "'tools':[{'functionDeclarations':[{'name':'f'}]}]}"), DT_CAP_TOOLS);
	/* a history of tool calls needs them to go on, tools listed or not */
	assert_int_equal(caps_of(A, "{'model':'m','max_tokens':5,'messages':["
				    "{'role':'user','content':'Weather?'},"
				    "{'role':'assistant','content':[{'type':'tool_use','id':'t1','name':'w','input':{}}]},"
				    "{'role':'user','content':[{'type':'tool_result','tool_use_id':'t1','content':'sunny'}]}]}"),
			 DT_CAP_TOOLS);
}

static void test_images(void **state)
{
	(void)state;
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':["
				    "{'type':'text','text':'What is it?'},"
				    "{'type':'image_url','image_url':{'url':'https://x.test/a.jpg'}}]}]}"),
			 DT_CAP_IMAGES);
	assert_int_equal(caps_of(A, "{'model':'m','max_tokens':5,'messages':[{'role':'user','content':["
				    "{'type':'image','source':{'type':'base64','media_type':'image/png','data':'iVBORw0K'}}]}]}"),
			 DT_CAP_IMAGES);
	assert_int_equal(caps_of(G, "{'contents':[{'role':'user','parts':[{'inlineData':"
				    "{'mimeType':'image/jpeg','data':'/9j/4AAQ'}}]}]}"), DT_CAP_IMAGES);
}

static void test_json_output(void **state)
{
	(void)state;
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':'Hi'}],"
				    "'response_format':{'type':'json_object'}}"), DT_CAP_JSON);
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':'Hi'}],"
				    "'response_format':{'type':'json_schema','json_schema':{'name':'s',"
				    "'schema':{'type':'object'}}}}"), DT_CAP_JSON);
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':'Hi'}],"
				    "'response_format':{'type':'text'}}"), 0);
	assert_int_equal(caps_of(G, "{'contents':[{'role':'user','parts':[{'text':'Hi'}]}],"
				    "'generationConfig':{'responseMimeType':'application/json'}}"), DT_CAP_JSON);
	/* all of them at once */
	assert_int_equal(caps_of(O, "{'model':'m','messages':[{'role':'user','content':["
				    "{'type':'image_url','image_url':{'url':'https://x.test/a.jpg'}}]}],"
				    "'tools':[{'type':'function','function':{'name':'f'}}],"
				    "'response_format':{'type':'json_object'}}"),
			 DT_CAP_TOOLS | DT_CAP_IMAGES | DT_CAP_JSON);
}

/* bytes / 4 rounded up, 4 per message, the images, the most output */
static void test_token_estimate(void **state)
{
	struct dt_route_needs n;

	(void)state;
	/* system 12 bytes + user 20 bytes = 32 bytes: 8, one message: 4, max 100 */
	n = needs_of(O, "{'model':'m','max_tokens':100,'messages':[{'role':'system','content':'You are kind'},"
			"{'role':'user','content':'12345678901234567890'}]}", "-");
	assert_int_equal(n.tokens, 8 + 4 + 100);
	/* no most output: none counted; 33 bytes round up */
	n = needs_of(O, "{'model':'m','messages':[{'role':'system','content':'You are kind'},"
			"{'role':'user','content':'123456789012345678901'}]}", "-");
	assert_int_equal(n.tokens, 9 + 4);
	/* an inline image counts as DT_TRAITS_IMAGE_TOKENS, not by its bytes */
	n = needs_of(A, "{'model':'m','max_tokens':50,'messages':[{'role':'user','content':["
			"{'type':'image','source':{'type':'base64','media_type':'image/png',"
			"'data':'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA'}}]}]}", "-");
	assert_int_equal(n.tokens, DT_TRAITS_IMAGE_TOKENS + 4 + 50);
	/* Gemini's maxOutputTokens; a tool's definition is prompt too: 4 + 2
	 * bytes (its name and description) make 2 tokens */
	n = needs_of(G, "{'contents':[{'role':'user','parts':[{'text':'1234'}]}],"
			"'tools':[{'functionDeclarations':[{'name':'f','description':'d'}]}],"
			"'generationConfig':{'maxOutputTokens':7}}", "-");
	assert_int_equal(n.tokens, 2 + 4 + 7);
}

#define TURN1 "{'model':'m','messages':[{'role':'system','content':'Be brief'}," \
	      "{'role':'user','content':'Plan a trip'}]}"
#define TURN2 "{'model':'m','messages':[{'role':'system','content':'Be brief'}," \
	      "{'role':'user','content':'Plan a trip'},{'role':'assistant','content':'Where to?'}," \
	      "{'role':'user','content':'Rome'}]}"

static uint64_t conv(enum dt_family shape, const char *fixture, const char *app)
{
	return needs_of(shape, fixture, app).conversation;
}

static void test_follow_up_turns_hash_the_same(void **state)
{
	uint64_t first = conv(O, TURN1, "chat");

	(void)state;
	assert_int_not_equal(first, 0);
	assert_int_equal(conv(O, TURN2, "chat"), first);
	/* and so for Anthropic and Gemini histories */
	assert_int_equal(conv(A, "{'model':'m','max_tokens':9,'system':'S','messages':[{'role':'user','content':'Q1'},"
				 "{'role':'assistant','content':'A1'},{'role':'user','content':'Q2'}]}", "chat"),
			 conv(A, "{'model':'m','max_tokens':9,'system':'S','messages':[{'role':'user','content':'Q1'}]}",
			      "chat"));
	assert_int_equal(conv(G, "{'contents':[{'role':'user','parts':[{'text':'Q1'}]},"
				 "{'role':'model','parts':[{'text':'A1'}]},{'role':'user','parts':[{'text':'Q2'}]}]}", "chat"),
			 conv(G, "{'contents':[{'role':'user','parts':[{'text':'Q1'}]}]}", "chat"));
	/* an assistant's opening line is part of the first turn */
	assert_int_equal(conv(O, "{'model':'m','messages':[{'role':'assistant','content':'Hello!'},"
				 "{'role':'user','content':'Hi'},{'role':'assistant','content':'How can I help?'},"
				 "{'role':'user','content':'Rome'}]}", "chat"),
			 conv(O, "{'model':'m','messages':[{'role':'assistant','content':'Hello!'},"
				 "{'role':'user','content':'Hi'}]}", "chat"));
}

static void test_other_conversations_hash_apart(void **state)
{
	uint64_t first = conv(O, TURN1, "chat");

	(void)state;
	/* another application, system text, first question, or part of it */
	assert_int_not_equal(conv(O, TURN1, "batch"), first);
	assert_int_not_equal(conv(O, "{'model':'m','messages':[{'role':'system','content':'Be long'},"
				     "{'role':'user','content':'Plan a trip'}]}", "chat"), first);
	assert_int_not_equal(conv(O, "{'model':'m','messages':[{'role':'system','content':'Be brief'},"
				     "{'role':'user','content':'Plan a tri'}]}", "chat"), first);
	assert_int_not_equal(conv(O, "{'model':'m','messages':[{'role':'user','content':'Plan a trip'}]}",
				  "chat"), first);
	/* the same words as an image's URL are not the same turn */
	assert_int_not_equal(conv(O, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
				     "'image_url':{'url':'https://x.test/a.jpg'}}]}]}", "chat"),
			     conv(O, "{'model':'m','messages':[{'role':'user','content':[{'type':'image_url',"
				     "'image_url':{'url':'https://x.test/b.jpg'}}]}]}", "chat"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_text_needs_nothing),
		cmocka_unit_test(test_tools),
		cmocka_unit_test(test_images),
		cmocka_unit_test(test_json_output),
		cmocka_unit_test(test_token_estimate),
		cmocka_unit_test(test_follow_up_turns_hash_the_same),
		cmocka_unit_test(test_other_conversations_hash_apart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
