/* SPDX-License-Identifier: MIT */
/* Sparse index -> pointer map; see radix.h. */
#include "radix.h"

#include <errno.h>
#include <stdlib.h>

#define RADIX_BITS	 6
#define RADIX_SLOTS	 (1u << RADIX_BITS)
#define RADIX_MASK	 (RADIX_SLOTS - 1)
#define RADIX_MAX_HEIGHT 11 /* 11 * 6 bits covers a 64-bit index */

struct radix_node {
	void *slot[RADIX_SLOTS];
	unsigned used;
};

/* Largest index a tree of this height can hold. */
static uint64_t radix_max_index(unsigned height)
{
	if (height == 0)
		return 0;
	if (height * RADIX_BITS >= 64)
		return UINT64_MAX;
	return (UINT64_C(1) << (height * RADIX_BITS)) - 1;
}

static unsigned slot_of(uint64_t index, unsigned level)
{
	return (index >> (level * RADIX_BITS)) & RADIX_MASK;
}

void *radix_lookup(const struct radix *tree, uint64_t index)
{
	struct radix_node *node = tree->root;

	if (!node || index > radix_max_index(tree->height))
		return NULL;
	for (unsigned level = tree->height - 1; level > 0; level--) {
		node = node->slot[slot_of(index, level)];
		if (!node)
			return NULL;
	}
	return node->slot[slot_of(index, 0)];
}

/* Add levels on top until index fits. */
static int radix_grow(struct radix *tree, uint64_t index)
{
	while (index > radix_max_index(tree->height) || !tree->root) {
		struct radix_node *node = calloc(1, sizeof(*node));

		if (!node)
			return -1;
		if (tree->root) {
			node->slot[0] = tree->root;
			node->used = 1;
		}
		tree->root = node;
		tree->height++;
	}
	return 0;
}

int radix_insert(struct radix *tree, uint64_t index, void *item)
{
	struct radix_node *node;

	if (radix_grow(tree, index))
		return -1;
	node = tree->root;
	for (unsigned level = tree->height - 1; level > 0; level--) {
		struct radix_node **child =
			(struct radix_node **)&node
				->slot[slot_of(index, level)];

		if (!*child) {
			*child = calloc(1, sizeof(**child));
			if (!*child)
				return -1; /* empty nodes are harmless */
			node->used++;
		}
		node = *child;
	}
	if (node->slot[slot_of(index, 0)]) {
		errno = EEXIST;
		return -1;
	}
	node->slot[slot_of(index, 0)] = item;
	node->used++;
	tree->count++;
	return 0;
}

void *radix_replace(struct radix *tree, uint64_t index, void *item)
{
	struct radix_node *node = tree->root;
	void *old;

	for (unsigned level = tree->height - 1; level > 0; level--)
		node = node->slot[slot_of(index, level)];
	old = node->slot[slot_of(index, 0)];
	node->slot[slot_of(index, 0)] = item;
	return old;
}

/* Remove index below node at level; frees nodes that become empty. */
static void *radix_delete_at(struct radix_node *node, unsigned level,
			     uint64_t index, int *node_empty)
{
	unsigned s = slot_of(index, level);
	void *item;

	if (!node->slot[s])
		return NULL;
	if (level == 0) {
		item = node->slot[s];
		node->slot[s] = NULL;
	} else {
		int child_empty = 0;

		item = radix_delete_at(node->slot[s], level - 1, index,
				       &child_empty);
		if (!child_empty)
			return item;
		free(node->slot[s]);
		node->slot[s] = NULL;
	}
	*node_empty = --node->used == 0;
	return item;
}

void *radix_delete(struct radix *tree, uint64_t index)
{
	int empty = 0;
	void *item;

	if (!tree->root || index > radix_max_index(tree->height))
		return NULL;
	item = radix_delete_at(tree->root, tree->height - 1, index, &empty);
	if (item)
		tree->count--;
	if (empty) {
		free(tree->root);
		tree->root = NULL;
		tree->height = 0;
	}
	return item;
}

static void *radix_next_at(struct radix_node *node, unsigned level,
			   uint64_t base, uint64_t *index, uint64_t last)
{
	uint64_t span = UINT64_C(1) << (level * RADIX_BITS);

	for (unsigned s = slot_of(*index, level); s < RADIX_SLOTS; s++) {
		uint64_t slot_base = base + s * span;
		void *entry = node->slot[s];

		if ((s && slot_base < base) || slot_base > last)
			return NULL; /* past the end, or wrapped around */
		if (*index < slot_base)
			*index = slot_base;
		if (!entry)
			continue;
		if (level == 0)
			return entry;
		entry = radix_next_at(entry, level - 1, slot_base, index, last);
		if (entry)
			return entry;
	}
	return NULL;
}

void *radix_next(const struct radix *tree, uint64_t *index, uint64_t last)
{
	uint64_t max = radix_max_index(tree->height);

	if (!tree->root || *index > last || *index > max)
		return NULL;
	if (last > max)
		last = max;
	return radix_next_at(tree->root, tree->height - 1, 0, index, last);
}

unsigned radix_gang(const struct radix *tree, uint64_t *index, uint64_t last,
		    void **items, uint64_t *indices, unsigned max)
{
	unsigned n = 0;

	while (n < max) {
		uint64_t i = *index;
		struct radix_node *leaf = tree->root;
		void *item = radix_next(tree, &i, last);

		if (!item)
			break;
		/* Walk down to i's leaf, then take the rest of it in a row. */
		for (unsigned level = tree->height - 1; level > 0; level--)
			leaf = leaf->slot[slot_of(i, level)];
		for (unsigned s = slot_of(i, 0); s < RADIX_SLOTS && n < max;
		     s++, i++) {
			if (i > last || (s && i == 0))
				goto out;
			if (leaf->slot[s]) {
				items[n] = leaf->slot[s];
				indices[n++] = i;
			}
			*index = i + 1;
		}
		if (i == 0 || i > last)
			break;
	}
out:
	return n;
}

static void radix_free_node(struct radix_node *node, unsigned level,
			    uint64_t base, void (*fn)(void *, uint64_t, void *),
			    void *arg)
{
	for (unsigned s = 0; s < RADIX_SLOTS; s++) {
		uint64_t index = base | ((uint64_t)s << (level * RADIX_BITS));

		if (!node->slot[s])
			continue;
		if (level)
			radix_free_node(node->slot[s], level - 1, index, fn,
					arg);
		else if (fn)
			fn(node->slot[s], index, arg);
	}
	free(node);
}

void radix_clear(struct radix *tree, void (*fn)(void *, uint64_t, void *),
		 void *arg)
{
	if (tree->root)
		radix_free_node(tree->root, tree->height - 1, 0, fn, arg);
	tree->root = NULL;
	tree->height = 0;
	tree->count = 0;
}
