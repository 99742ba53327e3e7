/* SPDX-License-Identifier: MIT */
/*
 * Redis Cluster routing (see redis_client.h): which node a key goes to.
 *
 * A key's hash slot is CRC16 (XMODEM: polynomial 0x1021, initial 0) of
 * the key modulo 16384, or of its hash tag: the bytes between the first
 * '{' and the first '}' after it, when there are any.  The slot map (slot
 * -> node) is loaded from CLUSTER SLOTS at open and again after a MOVED
 * (which also points its one slot at the new node at once); ASK sends one
 * command elsewhere without changing the map (redis_pipe.c).  Only
 * masters are used.
 *
 * Locking: the map is read under slots_lock (read) per lookup and written
 * under it (write) by a reload or a MOVED; one reload at a time
 * (refresh_lock), and none holds the map lock across I/O.
 */
#ifdef FL_HAVE_HIREDIS
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "redis_client.h"

static uint16_t crc16(const char *p, size_t len)
{
	uint16_t crc = 0;

	while (len--) {
		crc ^= (uint16_t)((uint8_t)*p++ << 8);
		for (int bit = 0; bit < 8; bit++)
			crc = crc & 0x8000 ? (uint16_t)(crc << 1) ^ 0x1021
					   : (uint16_t)(crc << 1);
	}
	return crc;
}

unsigned redis_key_slot(const char *key, size_t len)
{
	const char *open = memchr(key, '{', len), *close;

	if (open) {
		size_t rest = len - (size_t)(open - key) - 1;

		close = memchr(open + 1, '}', rest);
		if (close && close > open + 1) {
			key = open + 1;
			len = (size_t)(close - key);
		}
	}
	return crc16(key, len) & (REDIS_SLOTS - 1);
}

unsigned redis_slot_node(struct redis_client *cl, unsigned slot)
{
	unsigned node;

	if (!cl->cluster)
		return 0;
	pthread_rwlock_rdlock(&cl->slots_lock);
	node = cl->slot_node[slot & (REDIS_SLOTS - 1)];
	pthread_rwlock_unlock(&cl->slots_lock);
	return node;
}

static void slot_set(struct redis_client *cl, unsigned lo, unsigned hi,
		     unsigned node)
{
	pthread_rwlock_wrlock(&cl->slots_lock);
	for (unsigned s = lo; s <= hi && s < REDIS_SLOTS; s++)
		cl->slot_node[s] = (uint8_t)node;
	pthread_rwlock_unlock(&cl->slots_lock);
}

/* The node of a CLUSTER SLOTS entry's master, [host, port, ...]; an empty
 * host is the host of the node that answered. */
static int entry_node(struct redis_client *cl, const redisReply *m,
		      unsigned from)
{
	char host[REDIS_HOST_MAX];

	if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
	    m->element[0]->type != REDIS_REPLY_STRING ||
	    m->element[1]->type != REDIS_REPLY_INTEGER)
		return -1;
	snprintf(host, sizeof(host), "%s",
		 m->element[0]->len ? m->element[0]->str
				    : cl->nodes[from]->host);
	return redis_node_get(cl, host, (int)m->element[1]->integer);
}

/* Apply a CLUSTER SLOTS reply from node from; 0 or -1 (EPROTO). */
static int slots_apply(struct redis_client *cl, const redisReply *r,
		       unsigned from)
{
	size_t i;

	if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		errno = EPROTO; /* not a cluster, or no slot served */
		return -1;
	}
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		int node;

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER)
			continue;
		node = entry_node(cl, e->element[2], from);
		if (node >= 0)
			slot_set(cl, (unsigned)e->element[0]->integer,
				 (unsigned)e->element[1]->integer,
				 (unsigned)node);
	}
	return 0;
}

int redis_slots_load(struct redis_client *cl)
{
	static const char *argv[] = {"CLUSTER", "SLOTS"};
	static const size_t argvlen[] = {7, 5};
	unsigned i;
	int ret = -1, err = EIO;

	pthread_mutex_lock(&cl->refresh_lock);
	atomic_store(&cl->slots_stale, 0);
	atomic_fetch_add(&cl->n.slot_refreshes, 1);
	/* Seeds first, then every node learned since. */
	for (i = 0; i < atomic_load(&cl->nr_nodes) && ret; i++) {
		redisReply *r = redis_node_command(cl, i, 2, argv, argvlen);

		if (!r) {
			err = errno;
			continue;
		}
		ret = slots_apply(cl, r, i);
		if (ret)
			err = errno;
		freeReplyObject(r);
	}
	pthread_mutex_unlock(&cl->refresh_lock);
	if (ret)
		errno = err;
	return ret;
}

int redis_redirect(struct redis_client *cl, const char *err, unsigned from,
		   unsigned *node)
{
	char host[REDIS_HOST_MAX];
	const char *p, *colon;
	unsigned long slot;
	int kind, n;
	char *end;

	if (!strncmp(err, "MOVED ", 6))
		kind = 1;
	else if (!strncmp(err, "ASK ", 4))
		kind = 2;
	else
		return 0;
	p = err + (kind == 1 ? 6 : 4);
	slot = strtoul(p, &end, 10);
	if (end == p || *end != ' ' || slot >= REDIS_SLOTS)
		return 0;
	p = end + 1;
	colon = strrchr(p, ':');
	if (!colon || (size_t)(colon - p) >= sizeof(host))
		return 0;
	if (colon == p)
		snprintf(host, sizeof(host), "%s", cl->nodes[from]->host);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - p), p);
	n = redis_node_get(cl, host, atoi(colon + 1));
	if (n < 0)
		return 0;
	*node = (unsigned)n;
	if (kind == 1)
		slot_set(cl, (unsigned)slot, (unsigned)slot, (unsigned)n);
	return kind;
}

#endif /* FL_HAVE_HIREDIS */
