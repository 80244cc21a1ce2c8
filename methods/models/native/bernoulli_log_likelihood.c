/* Bernoulli log-likelihoods of binary images under a decoder's output layer, one pass per row.
 *
 * raw [rows, cols] is the output layer's matmul without its bias, in base-2 units, so that
 * a = raw + bias = l log2(e) for the logits l. Row r is a sample for image r % images of
 * centred [images, cols] (x - 1/2 for binary x). Each row gives (nats)
 *     out[r] = sum_i x_i l_i - softplus(l_i)
 *            = ln 2 * sum_i ((x_i - 1/2) a_i - |a_i| / 2 - log2(1 + 2^-|a_i|))
 * using softplus(l) = relu(l) + log(1 + e^-|l|) and relu(l) = (l + |l|) / 2.
 * torch needs a bias copy, abs, sum, exp2, +1, products, logs and a product with x, each a pass
 * over the matrix; this reads each logit once, while the matmul has left it in the cache
 * (methods/decoder_inference.py calls it on blocks of 256 rows).
 *
 * Vectorised with GCC/Clang vector extensions (8 floats; the compiler maps them onto AVX2, SSE or
 * NEON). Per lane: a running sum of (x - 1/2) a - |a| / 2, and a running product of the factors
 * 1 + 2^-|a|, each in (1, 2], whose log2 is taken once per row, or every 64 steps so that a
 * product stays below 2^64. 2^-|a| is Cephes' exp2f polynomial (relative error 1.7e-7 on
 * [-1/2, 1/2]) scaled through the exponent bits.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define WIDTH 8
#define STEPS_PER_LOG 64          /* a lane multiplies one factor (at most 2) per step: < 2^64 */

typedef float floats __attribute__((vector_size(WIDTH * sizeof(float))));
typedef int32_t ints __attribute__((vector_size(WIDTH * sizeof(int32_t))));

static const float ROUNDING = 12582912.0f;   /* 1.5 * 2^23: x + ROUNDING rounds x to an integer */

static inline floats splat(float c) { return (floats){0} + c; }

static inline floats load(const float *p) {
    floats v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline floats absolute(floats v) { return (floats)((ints)v & 0x7fffffff); }

/* 2^-v for v >= 0 (v above 64 is taken as 64: 1 + 2^-64 rounds to 1 in float32). */
static inline floats exp2_negative(floats v) {
    ints large = v > 64.0f;
    floats w = (floats)(((ints)v & ~large) | ((ints)splat(64.0f) & large));
    floats shifted = splat(ROUNDING) - w;          /* its low mantissa bits hold m = round(-w) */
    floats x = -((shifted - ROUNDING) + w);       /* -w - m, in [-1/2, 1/2] */
    floats p = splat(1.535336188319500e-4f);
    p = p * x + 1.339887440266574e-3f;
    p = p * x + 9.618437357674640e-3f;
    p = p * x + 5.550332471162809e-2f;
    p = p * x + 2.402264791363012e-1f;
    p = p * x + 6.931472028550421e-1f;
    p = p * x + 1.0f;                              /* 2^x */
    return (floats)((ints)p + ((ints)shifted << 23));   /* times 2^m: m added to the exponent */
}

static float sum_of_log2(floats p) {
    float total = 0.0f;
    for (int lane = 0; lane < WIDTH; lane++) total += log2f(p[lane]);
    return total;
}

static float sum_of_lanes(floats v) {
    float total = 0.0f;
    for (int lane = 0; lane < WIDTH; lane++) total += v[lane];
    return total;
}

void bernoulli_log_likelihood(const float *raw, const float *bias, const float *centred,
                              int64_t rows, int64_t cols, int64_t images, float *out) {
    const float ln2 = 0.69314718055994531f;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = raw + r * cols, *x = centred + (r % images) * cols;
        floats linear0 = splat(0.0f), linear1 = linear0, product0 = splat(1.0f), product1 = product0;
        float log2_products = 0.0f;
        int steps = 0;
        int64_t i = 0;
        for (; i + 2 * WIDTH <= cols; i += 2 * WIDTH) {   /* two vectors: independent products */
            floats a0 = load(row + i) + load(bias + i), a1 = load(row + i + WIDTH) + load(bias + i + WIDTH);
            floats abs0 = absolute(a0), abs1 = absolute(a1);
            linear0 += load(x + i) * a0 - 0.5f * abs0;
            linear1 += load(x + i + WIDTH) * a1 - 0.5f * abs1;
            product0 *= 1.0f + exp2_negative(abs0);
            product1 *= 1.0f + exp2_negative(abs1);
            if (++steps == STEPS_PER_LOG) {
                log2_products += sum_of_log2(product0) + sum_of_log2(product1);
                product0 = product1 = splat(1.0f);
                steps = 0;
            }
        }
        float linear = sum_of_lanes(linear0) + sum_of_lanes(linear1);
        log2_products += sum_of_log2(product0) + sum_of_log2(product1);
        for (; i < cols; i++) {                           /* the last cols % 16 pixels */
            float a = row[i] + bias[i];
            linear += x[i] * a - 0.5f * fabsf(a);
            log2_products += log2f(1.0f + exp2f(-fabsf(a)));
        }
        out[r] = (linear - log2_products) * ln2;
    }
}
