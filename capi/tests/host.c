/* The C API on the host: embeds sentences, asks a knowledge bank, chats, and checks that every
 * misuse gets its error code. tests/tests/capi.rs builds it against libpith.a, runs it and
 * compares its lines with the Rust runtime's.
 *
 * usage: host PACKAGE BANK REASONER CHAT_BANK   (the Tier M package, its StackFAQ bank,
 *        reasoner-m and its response bank)
 *
 * capi/examples/qemu builds the same program for Cortex-M (newlib, files through semihosting),
 * so it must stay portable C99: the fixed-width fields are cast for printf (uint32_t is an
 * unsigned long on arm-none-eabi), and size_t goes through unsigned long (Debian's newlib has no
 * %zu). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pith.h"

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) { perror(path); exit(2); }
    fclose(f);
    *len = (size_t)n;
    return b;
}

static unsigned fnv1a(const int8_t *v, size_t n) {
    unsigned h = 2166136261u;
    for (size_t i = 0; i < n; i++) { h ^= (unsigned char)v[i]; h *= 16777619u; }
    return h;
}

static int failures = 0;
#define EXPECT(call, want) do { int got_ = (call); if (got_ != (want)) { \
    printf("FAIL %s = %d (%s), want %d\n", #call, got_, pith_strerror(got_), (want)); failures++; } } while (0)

static pith_model model;
static pith_bank bank, chat_bank;
static pith_reasoner reasoner;
static pith_chat chat;

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: host PACKAGE BANK REASONER CHAT_BANK\n"); return 2; }
    size_t plen, blen, rlen, clen;
    unsigned char *pkg = slurp(argv[1], &plen), *kb = slurp(argv[2], &blen);
    unsigned char *rpkg = slurp(argv[3], &rlen), *ckb = slurp(argv[4], &clen);

    /* Misuse before anything is open. */
    EXPECT(pith_model_dim(&model) == 0, 1);
    EXPECT(pith_embed(&model, "x", 1, NULL, 0, NULL, 0, NULL), PITH_ERR_HANDLE);
    EXPECT(pith_model_open(NULL, pkg, plen), PITH_ERR_NULL);
    EXPECT(pith_model_open(&model, NULL, plen), PITH_ERR_NULL);
    EXPECT(pith_model_open(&model, pkg, plen / 2), PITH_ERR_PACKAGE_TRUNCATED);
    EXPECT(pith_model_dim(&model) == 0, 1); /* a failed open leaves it closed */
    EXPECT(pith_model_open(&model, rpkg, rlen), PITH_ERR_PACKAGE_KIND);

    EXPECT(pith_model_open(&model, pkg, plen), PITH_OK);
    size_t dim = pith_model_dim(&model);
    size_t words = pith_model_arena_words(&model, 128);
    int32_t *arena = malloc(words * sizeof(int32_t)); /* the test's own buffers; pith allocates nothing */
    int8_t *v = malloc(dim), *w = malloc(dim);
    printf("dim %lu arena %lu\n", (unsigned long)dim, (unsigned long)pith_model_arena_words(&model, 64));

    static const char *sentences[] = {
        "A man is playing a guitar.",
        "Someone plays the guitar on stage.",
        "How do I delete my Facebook account?",
    };
    for (int i = 0; i < 3; i++) {
        size_t tokens = 0;
        EXPECT(pith_embed(&model, sentences[i], strlen(sentences[i]), arena, words, v, dim, &tokens), PITH_OK);
        printf("embed %d tokens %lu fnv %08x\n", i, (unsigned long)tokens, fnv1a(v, dim));
    }
    float cos = 0;
    EXPECT(pith_embed(&model, sentences[0], strlen(sentences[0]), arena, words, w, dim, NULL), PITH_OK);
    EXPECT(pith_cosine(v, w, dim, &cos), PITH_OK);
    printf("cosine %.6f\n", cos);

    /* Misuse of embed and cosine. */
    EXPECT(pith_embed(&model, "x", 1, arena, words, v, dim - 1, NULL), PITH_ERR_BUFFER);
    EXPECT(pith_embed(&model, "x", 1, arena, 4, v, dim, NULL), PITH_ERR_ARENA);
    EXPECT(pith_embed(&model, "\xff\xfe", 2, arena, words, v, dim, NULL), PITH_ERR_UTF8);
    EXPECT(pith_embed(&model, NULL, 3, arena, words, v, dim, NULL), PITH_ERR_NULL);
    EXPECT(pith_embed(&model, "x", 1, NULL, words, v, dim, NULL), PITH_ERR_NULL);
    EXPECT(pith_embed(&model, "x", 1, (int32_t *)((char *)arena + 1), words - 1, v, dim, NULL), PITH_ERR_NULL);
    EXPECT(pith_cosine(v, NULL, dim, &cos), PITH_ERR_NULL);
    EXPECT(pith_embed(&model, NULL, 0, arena, words, v, dim, NULL), PITH_OK); /* the empty text */

    /* The knowledge bank: search and ask. */
    EXPECT(pith_bank_open(&bank, kb, blen - 1, &model) > 0, 1);
    EXPECT(pith_bank_open(&bank, kb, blen, &model), PITH_OK);
    const char *q = sentences[2];
    EXPECT(pith_embed(&model, q, strlen(q), arena, words, v, dim, NULL), PITH_OK);
    pith_hit hits[3];
    size_t found = 0;
    EXPECT(pith_bank_search(&bank, v, dim, hits, 3, &found), PITH_OK);
    for (size_t i = 0; i < found; i++) printf("hit %lu entry %u score %d\n", (unsigned long)i, (unsigned)hits[i].index, (int)hits[i].score);
    pith_hit hit;
    int32_t confident = -1;
    EXPECT(pith_bank_ask(&bank, v, dim, &hit, &confident), PITH_OK);
    char id[64];
    size_t need = 0;
    EXPECT(pith_bank_text(&bank, hit.index, PITH_TEXT_ID, id, sizeof id, &need), PITH_OK);
    printf("ask entry %u id %s confident %d\n", (unsigned)hit.index, id, (int)confident);
    EXPECT(pith_bank_text(&bank, hit.index, PITH_TEXT_ANSWER, id, 2, &need), PITH_ERR_BUFFER);
    EXPECT(need > 2, 1);
    EXPECT(pith_bank_text(&bank, pith_bank_len(&bank), PITH_TEXT_ID, id, sizeof id, NULL), PITH_ERR_RANGE);
    EXPECT(pith_bank_text(&bank, 0, 7, id, sizeof id, NULL), PITH_ERR_RANGE);
    EXPECT(pith_bank_search(&bank, v, dim - 1, hits, 3, &found), PITH_ERR_BANK_MODEL);

    /* A conversation with reasoner-m over its response bank. */
    EXPECT(pith_reasoner_open(&reasoner, pkg, plen), PITH_ERR_PACKAGE_KIND);
    EXPECT(pith_reasoner_open(&reasoner, rpkg, rlen), PITH_OK);
    EXPECT(pith_bank_open(&chat_bank, ckb, clen, &model), PITH_OK);
    size_t mem_words = pith_chat_words(dim);
    int32_t *mem = malloc(mem_words * sizeof(int32_t));
    int8_t *scratch = malloc(2 * dim);
    pith_chat_answer ans;
    EXPECT(pith_chat_step(&chat, &model, "hi", 2, arena, words, scratch, 2 * dim, &ans), PITH_ERR_HANDLE);
    EXPECT(pith_chat_open(&chat, &model, &reasoner, &chat_bank, mem, mem_words - 1), PITH_ERR_ARENA);
    EXPECT(pith_chat_open(&chat, &model, &reasoner, &chat_bank, mem, mem_words), PITH_OK);
    EXPECT(pith_chat_step(&chat, &model, "hi", 2, arena, words, scratch, 2 * dim - 1, &ans), PITH_ERR_BUFFER);
    static const char *turns[] = {
        "hi! how are you doing today?",
        "i just got back from a long run",
        "what would you do with a million dollars?",
    };
    char said[1024];
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++) {
            EXPECT(pith_chat_step(&chat, &model, turns[i], strlen(turns[i]), arena, words, scratch, 2 * dim, &ans), PITH_OK);
            EXPECT(pith_bank_text(&chat_bank, ans.entry, PITH_TEXT_QUESTION, said, sizeof said, NULL), PITH_OK);
            printf("chat %d entry %u prediction %08x refined %d answer %s\n", i, (unsigned)ans.entry, (unsigned)ans.prediction, (int)ans.refined, said);
        }
        EXPECT(pith_chat_reset(&chat), PITH_OK); /* the second round must repeat the first */
    }
    printf("strerror %s\n", pith_strerror(PITH_ERR_UTF8));
    printf("%s\n", failures ? "FAILED" : "errors ok");
    free(arena); free(v); free(w); free(mem); free(scratch);
    free(pkg); free(kb); free(rpkg); free(ckb);
    return failures != 0;
}
