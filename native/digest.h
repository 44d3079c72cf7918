// SHAKE-256 and SHA3-256 (FIPS 202) over a list of parts, each a public byte array or a Secret
// handle, so KDFs can absorb secrets without those bytes ever reaching JavaScript.
// SHA-384 (FIPS 180-4) over public parts only: the transcript hash of the HKDF key schedule.
#pragma once
#include <napi.h>

namespace qt {
void InitDigest(Napi::Env env, Napi::Object exports);
}
