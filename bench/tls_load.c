// SPDX-License-Identifier: MIT
/*
 * tls_load: an HTTPS load generator for the proxy benchmark.
 *
 * N kept-alive TLS connections (verified against --ca, SNI and Host
 * --sni) to one address, on one libevent loop, in one of three modes:
 *
 *   --rate R   open loop: requests are due at a constant rate R, spread
 *              over the connections. A request goes out on a connection
 *              with nothing outstanding; when every connection is busy it
 *              waits for the next free one and counts as late. Latency is
 *              taken from the time the request was due, not the time it
 *              left, so a stalled server cannot hide its stall by slowing
 *              the client down (coordinated omission).
 *   --max      closed loop: every connection sends its next request as soon
 *              as the previous answer is in; the throughput is the figure.
 *   --sse N    N connections, one streamed completion each, started
 *              evenly over --duration seconds once every connection is up,
 *              then all open at once: time to the first event, how much
 *              later than fakellm's pacing (--token-ms) each event came
 *              after the one before it, and the memory (VmRSS) of
 *              --watch-pid before the connections and while the N streams
 *              are open.
 *
 * Requests are small non-streaming POST /v1/chat/completions (--words
 * tokens asked). Output: one line of key=value pairs (see print_*). Every
 * failed handshake, reset, non-200 answer or truncated stream is counted
 * in errors= and the first few are described on stderr; requests an
 * overloaded server left unanswered, or that never found a free
 * connection, when the run gave up on them are unanswered= and unsent=.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>
#include <http_parser.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bpfobj.h"

#define NS_PER_S      1000000000ull
#define NS_PER_MS     1000000ull
/* after the window, how long answers (and late requests) are waited for:
 * past it an overloaded server's backlog is reported, not waited out */
#define DRAIN_NS      (3 * NS_PER_S)
#define ERRORS_SHOWN  5

/* ---- histogram ------------------------------------------------------------------
 *
 * Log-linear buckets in the manner of HdrHistogram: values below 2^(SUB_BITS+1)
 * have a bucket each, larger ones 2^SUB_BITS buckets per power of two, so
 * any value is known to within 1/64 (1.6 %) from 1 ns to 2^40 ns (18 min).
 */
#define SUB_BITS  6
#define SUB       (1u << SUB_BITS)
#define MAX_SHIFT (40 - SUB_BITS)
#define BUCKETS   ((MAX_SHIFT + 2) * SUB)

struct hist {
	uint64_t count[BUCKETS];
	uint64_t n, sum, max;
};

static unsigned bucket_of(uint64_t v)
{
	unsigned msb = v ? 63u - (unsigned)__builtin_clzll(v) : 0;
	unsigned shift = msb > SUB_BITS ? msb - SUB_BITS : 0;

	if (shift > MAX_SHIFT)
		return BUCKETS - 1;
	return shift * SUB + (unsigned)(v >> shift);
}

/* the middle of bucket i's range of values */
static uint64_t bucket_value(unsigned i)
{
	unsigned shift = i < 2 * SUB ? 0 : i / SUB - 1;
	uint64_t low = (uint64_t)(i - shift * SUB) << shift;

	return low + ((1ull << shift) >> 1);
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->count[bucket_of(v)]++;
	h->n++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

/* the value at quantile q (0..1), in µs */
static double hist_us(const struct hist *h, double q)
{
	uint64_t rank = (uint64_t)(q * (double)h->n), seen = 0;

	if (!h->n)
		return 0;
	if (rank >= h->n)
		rank = h->n - 1;
	for (unsigned i = 0; i < BUCKETS; i++) {
		seen += h->count[i];
		if (seen > rank)
			return (double)bucket_value(i) / 1e3;
	}
	return (double)h->max / 1e3;
}

static double hist_mean_us(const struct hist *h)
{
	return h->n ? (double)h->sum / (double)h->n / 1e3 : 0;
}

/* ---- the watched process ------------------------------------------------------ */

/* VmRSS of pid in KiB, 0 when unknown */
static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* CPU time of pid (all threads, user + system) in clock ticks, 0 when unknown */
static unsigned long long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long utime, stime;
	ssize_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = (ssize_t)fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n > 0 ? n : 0] = '\0';
	/* fields after the command name, which may hold spaces: state is the 3rd */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return 0;
	return utime + stime;
}

/* ---- the run ------------------------------------------------------------------- */

enum mode { MODE_RATE, MODE_MAX, MODE_SSE };

struct opts {
	struct sockaddr_storage addr;
	int addr_len;
	const char *sni;
	const char *ca;
	enum mode mode;
	unsigned connections;
	double rate;
	double duration_s;
	double warmup_s;
	unsigned words;
	unsigned token_ms;
	pid_t watch_pid;
};

struct bench;

struct conn {
	struct bench *b;
	struct bufferevent *bev;
	http_parser parser;
	bool ready;        /* handshake done */
	bool busy;         /* a request is outstanding */
	bool listed;       /* on the free list (rate and stream modes) */
	bool streamed;     /* stream mode: its stream is over */
	uint64_t t0;       /* when the outstanding request was due (or sent) */
	/* streams: events seen, when the last one came, the start of the
	 * current one, the newline state, whether the last one was [DONE] */
	unsigned events;
	uint64_t last_event_ns;
	char event_head[16];
	size_t event_len;
	bool after_newline;
	bool last_was_done;
	struct conn *next_free;
};

struct bench {
	const struct opts *o;
	struct event_base *base;
	SSL_CTX *ctx;
	char request[512];
	size_t request_len;
	struct conn *conns;
	struct conn *free_list;
	unsigned ready;
	bool running;      /* the clock is going: requests are being sent */
	bool stopping;     /* nothing more is sent */
	struct event *tick;
	struct event *measure_start;
	struct event *measure_end;
	struct event *give_up;
	uint64_t start_ns;    /* the first request was due */
	uint64_t measure_ns;  /* the warm-up is over: latencies count from here */
	uint64_t end_ns;      /* no more requests are due */
	/* the schedule (rate and stream modes) */
	uint64_t interval_ns;
	uint64_t total;       /* requests due in all */
	uint64_t next;        /* the next request to send */
	uint64_t late_upto;   /* requests below this found no free connection */
	uint64_t outstanding;
	uint64_t measured, late, errors, unanswered, unsent, last_done_ns;
	/* CPU time of --watch-pid over the window (streams: first start to last end) */
	unsigned long long cpu_start, cpu_end;
	uint64_t cpu_start_ns, cpu_end_ns;
	/* streams */
	unsigned opened, finished, streams_over;
	long rss_before, rss_open;
	unsigned open_at_sample;
	struct hist lat;      /* request latency, or time to the first event */
	struct hist gap;      /* streams: event gaps beyond fakellm's pacing */
};

static void cpu_mark(const struct bench *b, unsigned long long *ticks, uint64_t *ns)
{
	if (b->o->watch_pid)
		*ticks = cpu_ticks(b->o->watch_pid);
	*ns = dt_now_ns();
}

static struct timeval tv_of_ns(uint64_t ns)
{
	return (struct timeval){ .tv_sec = (time_t)(ns / NS_PER_S),
				 .tv_usec = (suseconds_t)(ns % NS_PER_S / 1000) };
}

static void fail(struct bench *b, const struct conn *c, const char *what, const char *detail)
{
	if (b->errors++ < ERRORS_SHOWN)
		fprintf(stderr, "tls_load: connection %zu: %s%s%s\n", (size_t)(c - b->conns), what,
			*detail ? ": " : "", detail);
}

static void conn_open(struct conn *c);
static void dispatch(struct bench *b);

/* Rate and max modes end once the window is over and every answer is in
 * (rate mode: every request that was due is sent, late ones included). */
static void stop_if_done(struct bench *b)
{
	if (b->stopping && !b->outstanding && (b->o->mode != MODE_RATE || b->next == b->total))
		event_base_loopbreak(b->base);
}

/* Streams end when each is over, answered or lost. */
static void stream_over(struct bench *b)
{
	if (++b->streams_over < b->o->connections)
		return;
	cpu_mark(b, &b->cpu_end, &b->cpu_end_ns);
	event_base_loopbreak(b->base);
}

static void send_request(struct conn *c, uint64_t due)
{
	c->busy = true;
	c->t0 = due;
	c->events = 0;
	c->event_len = 0;
	c->after_newline = false;
	c->last_was_done = false;
	c->b->outstanding++;
	bufferevent_write(c->bev, c->b->request, c->b->request_len);
}

/* A connection with nothing outstanding: what it does next depends on the mode. */
static void conn_idle(struct conn *c)
{
	struct bench *b = c->b;

	switch (b->o->mode) {
	case MODE_RATE:
	case MODE_SSE: /* a stream per connection: only the schedule starts one */
		if (!c->listed) {
			c->listed = true;
			c->next_free = b->free_list;
			b->free_list = c;
		}
		dispatch(b);
		break;
	case MODE_MAX:
		if (!b->stopping)
			send_request(c, dt_now_ns());
		break;
	}
}

/* ---- rate and stream modes: the schedule ------------------------------------------------------ */

static uint64_t due_now(const struct bench *b, uint64_t now)
{
	uint64_t due;

	if (now < b->start_ns)
		return 0;
	due = (now - b->start_ns) / b->interval_ns + 1;
	return due < b->total ? due : b->total;
}

/* Send every request that is due on the free connections, then sleep until
 * the next one is due. Requests that find no free connection go out as
 * answers free one (conn_idle), still timed from when they were due. */
static void dispatch(struct bench *b)
{
	uint64_t now = dt_now_ns(), due = due_now(b, now);

	while (b->next < due && b->free_list) {
		struct conn *c = b->free_list;

		b->free_list = c->next_free;
		c->listed = false;
		if (!c->ready)
			continue; /* lost while it was listed: listed again once it is back */
		if (b->next < b->late_upto)
			b->late++;
		send_request(c, b->start_ns + b->next * b->interval_ns);
		b->next++;
	}
	if (b->next < due) {
		b->late_upto = due;
		return;
	}
	if (b->next < b->total) {
		struct timeval tv = tv_of_ns(b->start_ns + b->next * b->interval_ns - now);

		evtimer_add(b->tick, &tv);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dispatch(arg);
}

/* ---- responses ---------------------------------------------------------------------- */

static bool in_window(const struct bench *b, uint64_t due, uint64_t done)
{
	if (due < b->measure_ns)
		return false;
	/* closed loop: only what completed inside the window makes the throughput */
	return b->o->mode != MODE_MAX || done <= b->end_ns;
}

/* fakellm paces a stream so: the role chunk and the first word at once, a word
 * every token_ms after that, the finish chunk and [DONE] with the last word.
 * When event 'event' is due after the first one. */
static uint64_t event_due_ns(const struct opts *o, unsigned event)
{
	unsigned k = event ? event - 1 : 0;

	if (k > o->words - 1)
		k = o->words - 1;
	return (uint64_t)k * o->token_ms * NS_PER_MS;
}

/* How much longer than the pacing asks an event came after the one before.
 * The delay of an event's path, the same for every event, cancels out; what
 * a proxy adds by queueing events behind other work does not. */
static uint64_t gap_excess_ns(const struct opts *o, unsigned event, uint64_t gap)
{
	uint64_t paced = event_due_ns(o, event) - event_due_ns(o, event - 1);

	return gap > paced ? gap - paced : 0;
}

static void sample_memory(struct bench *b)
{
	b->rss_open = rss_kb(b->o->watch_pid);
	b->open_at_sample = b->opened - b->finished;
}

static void on_event(struct bench *b, struct conn *c)
{
	uint64_t now = dt_now_ns();

	c->last_was_done = c->event_len >= 12 && !memcmp(c->event_head, "data: [DONE]", 12);
	if (!c->events) {
		hist_add(&b->lat, now - c->t0);
		if (++b->opened == b->o->connections && b->o->watch_pid)
			sample_memory(b);
	} else {
		hist_add(&b->gap, gap_excess_ns(b->o, c->events, now - c->last_event_ns));
	}
	c->last_event_ns = now;
	c->events++;
	c->event_len = 0;
}

/* SSE events end with a blank line (\n\n, \r\n\r\n) */
static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->b->o->mode != MODE_SSE)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (at[i] == '\r')
			continue;
		if (at[i] == '\n' && c->after_newline) {
			c->after_newline = false;
			on_event(c->b, c);
			continue;
		}
		c->after_newline = at[i] == '\n';
		if (c->event_len < sizeof(c->event_head))
			c->event_head[c->event_len] = at[i];
		c->event_len++;
	}
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct bench *b = c->b;
	uint64_t now = dt_now_ns();

	if (!c->busy)
		return -1; /* an answer nobody asked for: the connection is lost */
	c->busy = false;
	b->outstanding--;
	if (p->status_code != 200) {
		char status[16];

		snprintf(status, sizeof(status), "%u", p->status_code);
		fail(b, c, "answer status", status);
	} else if (b->o->mode == MODE_SSE && !c->last_was_done) {
		fail(b, c, "stream ended without [DONE]", "");
	} else if (b->o->mode == MODE_SSE) {
		c->streamed = true;
		b->finished++;
	} else if (in_window(b, c->t0, now)) {
		hist_add(&b->lat, now - c->t0);
		b->measured++;
		b->last_done_ns = now;
	}
	if (b->o->mode == MODE_SSE) {
		stream_over(b);
		return 0;
	}
	conn_idle(c);
	stop_if_done(b);
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* ---- connections -------------------------------------------------------------------- */

/* A closed or broken connection is an error (but for a stream's connection
 * closed after its stream); an outstanding request is lost. Outside of
 * streams the connection comes back, so one reset does not shrink the load. */
static void conn_lost(struct conn *c, const char *what)
{
	struct bench *b = c->b;
	unsigned long ssl_err = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
	int sys = EVUTIL_SOCKET_ERROR();
	bool sse = b->o->mode == MODE_SSE, quiet = sse && c->streamed;
	bool was_ready = c->ready;

	if (!quiet)
		fail(b, c, what, ssl_err ? ERR_reason_error_string(ssl_err) :
			sys ? evutil_socket_error_to_string(sys) : "");
	if (c->busy) {
		c->busy = false;
		b->outstanding--;
	}
	if (c->bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	if (!was_ready && !b->running) {
		/* a handshake failed before the start: the run cannot be what was asked */
		event_base_loopbreak(b->base);
		return;
	}
	c->ready = false;
	if (sse) {
		if (!quiet)
			stream_over(b);
		return;
	}
	/* a connection that worked is opened again; one that failed its
	 * handshake stays down, or a refusing server would make a connect storm */
	if (was_ready && !b->stopping)
		conn_open(c);
	stop_if_done(b);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[8];
	int n;

	while ((n = evbuffer_peek(in, -1, NULL, v, 8)) > 0) {
		size_t used = 0;

		for (int i = 0; i < n && i < 8; i++) {
			size_t done = http_parser_execute(&c->parser, &parser_settings,
							  v[i].iov_base, v[i].iov_len);

			used += done;
			if (c->parser.http_errno != HPE_OK || done != v[i].iov_len) {
				conn_lost(c, http_errno_description(HTTP_PARSER_ERRNO(&c->parser)));
				return;
			}
		}
		evbuffer_drain(in, used);
	}
}

static void start_clock(struct bench *b);

static void on_conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct bench *b = c->b;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		c->ready = true;
		if (b->running)
			conn_idle(c);
		else if (++b->ready == b->o->connections)
			start_clock(b);
		return;
	}
	conn_lost(c, what & BEV_EVENT_EOF ? "closed by the server" : "connection error");
}

static void conn_open(struct conn *c)
{
	struct bench *b = c->b;
	SSL *ssl = SSL_new(b->ctx);
	int one = 1;

	if (!ssl || !SSL_set_tlsext_host_name(ssl, b->o->sni) || !SSL_set1_host(ssl, b->o->sni)) {
		SSL_free(ssl);
		conn_lost(c, "SSL_new");
		return;
	}
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	c->bev = bufferevent_openssl_socket_new(b->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		SSL_free(ssl);
		conn_lost(c, "bufferevent_openssl_socket_new");
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_conn_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&b->o->addr, b->o->addr_len)) {
		conn_lost(c, "connect");
		return;
	}
	/* requests are single small writes: Nagle would only hold them back */
	setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* ---- phases --------------------------------------------------------------------------- */

static void on_measure_start(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	cpu_mark(b, &b->cpu_start, &b->cpu_start_ns);
}

static void on_measure_end(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;
	struct timeval drain = tv_of_ns(DRAIN_NS);

	(void)fd;
	(void)what;
	cpu_mark(b, &b->cpu_end, &b->cpu_end_ns);
	b->stopping = true;
	evtimer_add(b->give_up, &drain);
	stop_if_done(b);
}

static void on_give_up(evutil_socket_t fd, short what, void *arg)
{
	struct bench *b = arg;

	(void)fd;
	(void)what;
	if (b->o->mode == MODE_SSE) {
		/* a stream this late is broken, not slow */
		fprintf(stderr, "tls_load: %u streams not over in time\n",
			b->o->connections - b->streams_over);
		b->errors += b->o->connections - b->streams_over;
	} else {
		b->unanswered = b->outstanding;
		b->unsent = b->total - b->next;
	}
	event_base_loopbreak(b->base);
}

/* Every connection is up: the warm-up starts now, the measurement after it.
 * Streams: they start, one per connection, evenly over the duration; each
 * ends the run when it is over, the last one the run. */
static void start_clock(struct bench *b)
{
	const struct opts *o = b->o;
	uint64_t warm_ns = (uint64_t)(o->warmup_s * 1e9), run_ns = (uint64_t)(o->duration_s * 1e9);

	b->running = true;
	b->start_ns = dt_now_ns();
	if (o->mode == MODE_SSE) {
		/* a stream that is not over by then is counted as lost */
		struct timeval limit = tv_of_ns(run_ns + event_due_ns(o, o->words + 1) +
						30 * NS_PER_S);

		b->total = o->connections;
		b->interval_ns = run_ns / o->connections ?: 1;
		cpu_mark(b, &b->cpu_start, &b->cpu_start_ns);
		evtimer_add(b->give_up, &limit);
	} else {
		struct timeval warm = tv_of_ns(warm_ns), end = tv_of_ns(warm_ns + run_ns);

		b->measure_ns = b->start_ns + warm_ns;
		b->end_ns = b->measure_ns + run_ns;
		evtimer_add(b->measure_start, &warm);
		evtimer_add(b->measure_end, &end);
		if (o->mode == MODE_RATE) {
			b->interval_ns = (uint64_t)(1e9 / o->rate);
			b->total = (b->end_ns - b->start_ns) / b->interval_ns;
		}
	}
	for (unsigned i = 0; i < o->connections; i++)
		conn_idle(&b->conns[i]);
}

/* ---- results --------------------------------------------------------------------------- */

static double cpu_pct(const struct bench *b)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (!b->o->watch_pid || b->cpu_end < b->cpu_start || b->cpu_end_ns <= b->cpu_start_ns ||
	    hz <= 0)
		return 0;
	return 100.0 * (double)(b->cpu_end - b->cpu_start) / (double)hz /
	       ((double)(b->cpu_end_ns - b->cpu_start_ns) / 1e9);
}

static void print_requests(const struct bench *b)
{
	const struct opts *o = b->o;
	/* open loop: over the time the measured requests really took to answer */
	double span_s = o->mode == MODE_RATE && b->last_done_ns > b->measure_ns ?
			(double)(b->last_done_ns - b->measure_ns) / 1e9 : o->duration_s;

	printf("offered_rps=%.0f achieved_rps=%.0f requests=%llu p50_us=%.1f p99_us=%.1f "
	       "max_us=%.1f mean_us=%.1f late=%llu unsent=%llu unanswered=%llu errors=%llu "
	       "cpu_pct=%.0f\n",
	       o->mode == MODE_RATE ? o->rate : 0, (double)b->measured / span_s,
	       (unsigned long long)b->measured, hist_us(&b->lat, 0.5), hist_us(&b->lat, 0.99),
	       (double)b->lat.max / 1e3, hist_mean_us(&b->lat), (unsigned long long)b->late,
	       (unsigned long long)b->unsent, (unsigned long long)b->unanswered,
	       (unsigned long long)b->errors, cpu_pct(b));
}

static void print_streams(const struct bench *b)
{
	long delta = b->rss_open - b->rss_before;
	unsigned open = b->open_at_sample;

	printf("streams=%u finished=%u open_at_sample=%u rss_before_kb=%ld rss_open_kb=%ld "
	       "kb_per_stream=%.1f ttfe_p50_us=%.1f ttfe_p99_us=%.1f gap_p50_us=%.1f "
	       "gap_p99_us=%.1f events=%llu errors=%llu cpu_pct=%.0f\n",
	       b->o->connections, b->finished, open, b->rss_before, b->rss_open,
	       open && b->rss_open ? (double)delta / open : 0, hist_us(&b->lat, 0.5),
	       hist_us(&b->lat, 0.99), hist_us(&b->gap, 0.5), hist_us(&b->gap, 0.99),
	       (unsigned long long)b->gap.n + b->opened, (unsigned long long)b->errors, cpu_pct(b));
}

/* ---- set-up ------------------------------------------------------------------------------- */

static int build_request(struct bench *b)
{
	char body[256];
	int blen, len;

	blen = snprintf(body, sizeof(body),
			"{\"model\":\"gpt-4o-mini\",\"stream\":%s,\"max_tokens\":%u,"
			"\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}",
			b->o->mode == MODE_SSE ? "true" : "false", b->o->words);
	len = snprintf(b->request, sizeof(b->request),
		       "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\n"
		       "Authorization: Bearer sk-bench\r\nContent-Type: application/json\r\n"
		       "Content-Length: %d\r\n\r\n%s", b->o->sni, blen, body);
	if (len < 0 || (size_t)len >= sizeof(b->request))
		return -1;
	b->request_len = (size_t)len;
	return 0;
}

static SSL_CTX *client_ctx(const char *ca)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fprintf(stderr, "tls_load: cannot load the CA file %s\n", ca);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	return ctx;
}

static int bench_init(struct bench *b, const struct opts *o)
{
	struct event_config *cfg = event_config_new();

	b->o = o;
	if (!cfg)
		return -1;
	/* µs timers (timerfd) instead of epoll's ms: requests 100 µs apart at 10k/s */
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	b->ctx = client_ctx(o->ca);
	b->conns = calloc(o->connections, sizeof(*b->conns));
	if (!b->base || !b->ctx || !b->conns || build_request(b))
		return -1;
	b->tick = evtimer_new(b->base, on_tick, b);
	b->measure_start = evtimer_new(b->base, on_measure_start, b);
	b->measure_end = evtimer_new(b->base, on_measure_end, b);
	b->give_up = evtimer_new(b->base, on_give_up, b);
	if (!b->tick || !b->measure_start || !b->measure_end || !b->give_up)
		return -1;
	for (unsigned i = 0; i < o->connections; i++)
		b->conns[i].b = b;
	return 0;
}

static void bench_free(struct bench *b)
{
	if (b->conns)
		for (unsigned i = 0; i < b->o->connections; i++)
			if (b->conns[i].bev)
				bufferevent_free(b->conns[i].bev);
	free(b->conns);
	if (b->tick)
		event_free(b->tick);
	if (b->measure_start)
		event_free(b->measure_start);
	if (b->measure_end)
		event_free(b->measure_end);
	if (b->give_up)
		event_free(b->give_up);
	SSL_CTX_free(b->ctx);
	if (b->base)
		event_base_free(b->base);
}

static int run(struct bench *b)
{
	const struct opts *o = b->o;

	if (o->mode == MODE_SSE && o->watch_pid)
		b->rss_before = rss_kb(o->watch_pid);
	for (unsigned i = 0; i < o->connections; i++)
		conn_open(&b->conns[i]);
	event_base_dispatch(b->base);
	if (!b->running) {
		fprintf(stderr, "tls_load: not every connection came up\n");
		return 1;
	}
	if (o->mode == MODE_SSE)
		print_streams(b);
	else
		print_requests(b);
	return 0;
}

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tls_load --connect IP:PORT --ca FILE [--sni NAME] [--watch-pid PID]\n"
		"                (--rate R | --max) [--connections N] [--duration S] [--warmup S]\n"
		"                | --sse N [--duration S] [--words W] [--token-ms T]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option options[] = {
		{ "connect",     required_argument, NULL, 'c' },
		{ "ca",          required_argument, NULL, 'a' },
		{ "sni",         required_argument, NULL, 's' },
		{ "connections", required_argument, NULL, 'n' },
		{ "rate",        required_argument, NULL, 'r' },
		{ "max",         no_argument,       NULL, 'm' },
		{ "sse",         required_argument, NULL, 'S' },
		{ "duration",    required_argument, NULL, 'd' },
		{ "warmup",      required_argument, NULL, 'w' },
		{ "words",       required_argument, NULL, 'W' },
		{ "token-ms",    required_argument, NULL, 't' },
		{ "watch-pid",   required_argument, NULL, 'p' },
		{ "help",        no_argument,       NULL, 'h' },
		{ 0 },
	};
	bool have_addr = false, have_mode = false;
	unsigned streams = 0;
	int opt;

	*o = (struct opts){ .sni = "api.openai.com", .connections = 16, .duration_s = 5,
			    .warmup_s = 1, .words = 16, .token_ms = 0 };
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o->addr_len = sizeof(o->addr);
			have_addr = !evutil_parse_sockaddr_port(optarg, (struct sockaddr *)&o->addr,
								&o->addr_len);
			break;
		case 'a': o->ca = optarg; break;
		case 's': o->sni = optarg; break;
		case 'n': o->connections = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': o->mode = MODE_RATE; o->rate = strtod(optarg, NULL); have_mode = true; break;
		case 'm': o->mode = MODE_MAX; have_mode = true; break;
		case 'S':
			o->mode = MODE_SSE;
			streams = (unsigned)strtoul(optarg, NULL, 10);
			have_mode = true;
			break;
		case 'd': o->duration_s = strtod(optarg, NULL); break;
		case 'w': o->warmup_s = strtod(optarg, NULL); break;
		case 'W': o->words = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': o->token_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': o->watch_pid = (pid_t)strtol(optarg, NULL, 10); break;
		case 'h': usage(stdout); exit(0);
		default: return -1;
		}
	}
	if (o->mode == MODE_SSE)
		o->connections = streams; /* a connection per stream */
	if (!have_addr || !have_mode || !o->ca || optind != argc || !o->connections ||
	    !o->words || o->duration_s <= 0 || o->warmup_s < 0 ||
	    (o->mode == MODE_RATE && (o->rate < 1 || o->rate > 1e7)))
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct bench *b;
	int rc;

	if (parse_opts(argc, argv, &o)) {
		usage(stderr);
		return 2;
	}
	/* a server closing while we write must be an error we count, not our death */
	signal(SIGPIPE, SIG_IGN);
	/* requests are timed from when they were due: the kernel's default 50 µs
	 * of slack on our timer would be noise in every latency (best effort) */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	b = calloc(1, sizeof(*b)); /* large (histograms): not on the stack */
	if (!b || bench_init(b, &o)) {
		fprintf(stderr, "tls_load: out of memory or no TLS context\n");
		rc = 1;
	} else {
		rc = run(b);
	}
	if (b)
		bench_free(b);
	free(b);
	return rc;
}
