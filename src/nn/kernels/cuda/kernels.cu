// CUDA forms of ayt's custom ops (src/nn/kernels/cpu/*), compiled to PTX by build.rs with the
// `cuda` feature. Each kernel mirrors its CPU twin's arithmetic: element work in f32, sums in f64,
// the max-pool's first-maximum tie rule, the dropout hash bit for bit. The GPU check
// (tests/cuda.rs) compares every one with the CPU kernel.
#include <stdint.h>

#define ACT_IDENTITY 0
#define ACT_SILU 1
#define ACT_RELU 2

__device__ __forceinline__ float act_value(int act, float z) {
    if (act == ACT_SILU) return z / (1.0f + expf(-z));
    if (act == ACT_RELU) return z > 0.0f ? z : 0.0f;
    return z;
}

__device__ __forceinline__ float act_grad(int act, float z) {
    if (act == ACT_SILU) {
        float s = 1.0f / (1.0f + expf(-z));
        return s * (1.0f + z * (1.0f - s));
    }
    if (act == ACT_RELU) return z > 0.0f ? 1.0f : 0.0f;
    return 1.0f;
}

// The sum of `v` over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ double block_sum(double v) {
    __shared__ double warp_sums[32];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffff, v, o);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    __syncthreads();  // warp_sums may still be read by a previous call
    if (lane == 0) warp_sums[warp] = v;
    __syncthreads();
    int warps = blockDim.x >> 5;
    double total = 0.0;
    for (int i = 0; i < warps; i++) total += warp_sums[i];
    return total;
}

// Mean and 1/sqrt(var + eps) of one group (two-pass, biased variance, as the CPU kernel).
__device__ void group_stats(const float* xg, int len, double eps, double* mean, double* rstd) {
    double s = 0.0;
    for (int i = threadIdx.x; i < len; i += blockDim.x) s += (double)xg[i];
    double m = block_sum(s) / (double)len;
    float mf = (float)m;
    double q = 0.0;
    for (int i = threadIdx.x; i < len; i += blockDim.x) {
        float d = xg[i] - mf;
        q += (double)(d * d);
    }
    double var = block_sum(q) / (double)len;
    *mean = m;
    *rstd = 1.0 / sqrt(var + eps);
}

// act(GroupNorm(x) * gamma + beta): one block per (sample, group).
extern "C" __global__ void gn_fwd_f32(const float* x, const float* gamma, const float* beta, float* y,
                                      int c, int hw, int groups, double eps, int act) {
    int cpg = c / groups, g = blockIdx.x % groups;
    int len = cpg * hw;
    size_t base = (size_t)blockIdx.x * len;
    double mean, rstd;
    group_stats(x + base, len, eps, &mean, &rstd);
    for (int i = threadIdx.x; i < len; i += blockDim.x) {
        int ci = g * cpg + i / hw;
        double a = (double)gamma[ci] * rstd;
        float af = (float)a, sh = (float)((double)beta[ci] - mean * a);
        y[base + i] = act_value(act, x[base + i] * af + sh);
    }
}

// The backward, one block per (sample, group): dx, and per (sample, channel)
// (sum dz * xhat, sum dz) into partial[(b * c + ci) * 2 + {0, 1}] for gn_param_grads_f32.
extern "C" __global__ void gn_bwd_f32(const float* dy, const float* x, const float* gamma, const float* beta,
                                      float* dx, double* partial, int c, int hw, int groups, double eps, int act) {
    int cpg = c / groups, g = blockIdx.x % groups, b = blockIdx.x / groups;
    int len = cpg * hw;
    size_t base = (size_t)blockIdx.x * len;
    double mean, rstd;
    group_stats(x + base, len, eps, &mean, &rstd);
    float mt = (float)mean, rt = (float)rstd;
    double s1 = 0.0, s2 = 0.0;
    for (int k = 0; k < cpg; k++) {
        int ci = g * cpg + k;
        float ga = gamma[ci], be = beta[ci];
        double a = 0.0, d = 0.0;
        for (int j = threadIdx.x; j < hw; j += blockDim.x) {
            size_t i = base + (size_t)k * hw + j;
            float xhat = (x[i] - mt) * rt;
            float dz = dy[i] * act_grad(act, xhat * ga + be);
            a += (double)(dz * (x[i] - mt) * rt);
            d += (double)dz;
        }
        a = block_sum(a);
        d = block_sum(d);
        if (threadIdx.x == 0) {
            partial[((size_t)b * c + ci) * 2] = a;
            partial[((size_t)b * c + ci) * 2 + 1] = d;
        }
        s1 += d * (double)ga;
        s2 += a * (double)ga;
    }
    float m1 = (float)(s1 / (double)len), m2 = (float)(s2 / (double)len);
    for (int i = threadIdx.x; i < len; i += blockDim.x) {
        int ci = g * cpg + i / hw;
        float ga = gamma[ci], be = beta[ci];
        float xhat = (x[base + i] - mt) * rt;
        float dz = dy[base + i] * act_grad(act, xhat * ga + be);
        dx[base + i] = rt * (dz * ga - m1 - xhat * m2);
    }
}

// dgamma[c] and dbeta[c] (at out[c] and out[C + c]): the partial sums over the batch in order.
extern "C" __global__ void gn_param_grads_f32(const double* partial, float* out, int b, int c) {
    int ci = blockIdx.x * blockDim.x + threadIdx.x;
    if (ci >= c) return;
    double sg = 0.0, sb = 0.0;
    for (int k = 0; k < b; k++) {
        sg += partial[((size_t)k * c + ci) * 2];
        sb += partial[((size_t)k * c + ci) * 2 + 1];
    }
    out[ci] = (float)sg;
    out[c + ci] = (float)sb;
}

// Whether `b` beats `a` in a running maximum: larger, or the first NaN; ties keep `a`.
__device__ __forceinline__ bool beats(float b, float a) { return (b > a) || (isnan(b) && !isnan(a)); }

// Which of a 2x2 window [v0 v1; v2 v3] is its maximum (0..3), the first on ties.
__device__ __forceinline__ int window_argmax(float v0, float v1, float v2, float v3) {
    bool c1 = beats(v1, v0), c3 = beats(v3, v2);
    float m01 = c1 ? v1 : v0, m23 = c3 ? v3 : v2;
    bool c = beats(m23, m01);
    return c ? (c3 ? 3 : 2) : (c1 ? 1 : 0);
}

// 2x2 max-pool, stride 2, over planes of even h x w: one thread per output.
extern "C" __global__ void maxpool2x_fwd_f32(const float* x, float* y, size_t n_out, int h, int w) {
    size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n_out) return;
    int wo = w / 2, ho = h / 2;
    size_t plane = o / ((size_t)ho * wo);
    int r = (int)(o % ((size_t)ho * wo)), oy = r / wo, ox = r % wo;
    const float* p = x + plane * h * w + (size_t)(2 * oy) * w + 2 * ox;
    float v[4] = {p[0], p[1], p[w], p[w + 1]};
    y[o] = v[window_argmax(v[0], v[1], v[2], v[3])];
}

// Its backward: each window's gradient to its first maximum, zeros elsewhere (writes all of dx).
extern "C" __global__ void maxpool2x_bwd_f32(const float* x, const float* dy, float* dx, size_t n_out, int h, int w) {
    size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n_out) return;
    int wo = w / 2, ho = h / 2;
    size_t plane = o / ((size_t)ho * wo);
    int r = (int)(o % ((size_t)ho * wo)), oy = r / wo, ox = r % wo;
    size_t at = plane * h * w + (size_t)(2 * oy) * w + 2 * ox;
    const float* p = x + at;
    int k = window_argmax(p[0], p[1], p[w], p[w + 1]);
    float g = dy[o];
    dx[at] = k == 0 ? g : 0.0f;
    dx[at + 1] = k == 1 ? g : 0.0f;
    dx[at + w] = k == 2 ? g : 0.0f;
    dx[at + w + 1] = k == 3 ? g : 0.0f;
}

// Nearest-neighbour 2x upsampling of h x w planes: one thread per output.
extern "C" __global__ void upsample2x_f32(const float* x, float* y, size_t n_out, int h, int w) {
    size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n_out) return;
    int w2 = 2 * w;
    size_t plane = o / ((size_t)4 * h * w);
    int r = (int)(o % ((size_t)4 * h * w)), iy = r / w2, ix = r % w2;
    y[o] = x[plane * h * w + (size_t)(iy / 2) * w + ix / 2];
}

// Its adjoint: each pixel of an h x w plane is the sum of its 2x2 block of dy (in the CPU's order).
extern "C" __global__ void blocksum2x_f32(const float* dy, float* dx, size_t n_out, int h, int w) {
    size_t o = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= n_out) return;
    int w2 = 2 * w;
    size_t plane = o / ((size_t)h * w);
    int r = (int)(o % ((size_t)h * w)), iy = r / w, ix = r % w;
    const float* p = dy + plane * 4 * h * w + (size_t)(2 * iy) * w2 + 2 * ix;
    dx[o] = (p[0] + p[1]) + (p[w2] + p[w2 + 1]);
}

// The UNet's residual join (a + b) * s.
extern "C" __global__ void add_scaled_f32(const float* a, const float* b, float* y, size_t n, float s) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = (a[i] + b[i]) * s;
}

// SplitMix64's finaliser: the dropout hash (src/nn/kernels/cpu/dropout.rs has its twin).
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// y = x * scale where element i is kept (its hash's top 32 bits below `threshold`), else 0.
extern "C" __global__ void dropout_f32(const float* x, float* y, size_t n, uint64_t key, uint64_t threshold, float scale) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    uint64_t h = mix64(key + (uint64_t)i * 0x9E3779B97F4A7C15ull);
    y[i] = (h >> 32) < threshold ? x[i] * scale : 0.0f;
}
