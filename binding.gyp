{
  # node-gyp build of the same sources as CMakeLists.txt (what `npm install` runs for dependents).
  "variables": {
    "qt_openssl_dir%": "<!(bash scripts/provision-openssl.sh)",
    "qt_fips_profile%": "<!(node -p \"process.env.QUANTUM_TUNNEL_FIPS_PROFILE === '1' ? 1 : 0\")"
  },
  "targets": [
    {
      "target_name": "quantum_tunnel",
      "sources": [
        "native/addon.cc",
        "native/aead.cc",
        "native/digest.cc",
        "native/ecdh.cc",
        "native/errors.cc",
        "native/fips.cc",
        "native/hkdf.cc",
        "native/library_context.cc",
        "native/hybrid.cc",
        "native/mldsa.cc",
        "native/mlkem.cc",
        "native/pem.cc",
        "native/private_key.cc",
        "native/random.cc",
        "native/secret.cc",
        "native/testing.cc",
        "native/x25519.cc",
        "native/x509.cc"
      ],
      # Node-API only: the Node-API headers from npm, never Node's own include directory, which
      # also holds Node's (older) OpenSSL headers.
      "include_dirs": [
        "<!(node -p \"require('node-api-headers').include_dir\")",
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<(qt_openssl_dir)/include"
      ],
      "include_dirs!": [
        "<(node_root_dir)/include/node",
        "<(node_root_dir)/src",
        "<(node_root_dir)/deps/openssl/config",
        "<(node_root_dir)/deps/openssl/openssl/include",
        "<(node_root_dir)/deps/uv/include",
        "<(node_root_dir)/deps/zlib",
        "<(node_root_dir)/deps/v8/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-Wall", "-Wextra", "-Werror", "-fno-exceptions"],
      "libraries": ["<(qt_openssl_dir)/lib/libcrypto.a", "-lpthread", "-ldl"],
      "ldflags": ["-Wl,--exclude-libs,ALL", "-Wl,-Bsymbolic", "-Wl,--version-script=<(module_root_dir)/native/exports.map"],
      "conditions": [
        ["qt_fips_profile==1", { "defines": ["QT_NO_CHACHA20", "QT_FIPS_PROFILE"] }]
      ]
    }
  ]
}
