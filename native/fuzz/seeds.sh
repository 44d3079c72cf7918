#!/usr/bin/env bash
# Writes the native fuzz targets' generated seeds (scripts/fuzz-native.sh --seeds): small valid
# inputs made with the OpenSSL 3.5 CLI and edge cases next to them. Fresh keys each time, so
# rerunning changes the files; the committed set is what the fuzzers start from.
#
# usage: native/fuzz/seeds.sh OPENSSL_BIN OUT_DIR
set -euo pipefail
openssl="$1"
out="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENSSL_CONF=/dev/null
cd "$tmp"

# selector byte, then a file: into OUT/<target>/<name>
seed() {  # target name selector(hex, or "" for none) file
  mkdir -p "$out/$1"
  { [ -n "$3" ] && printf "\\x$3"; cat "$4"; } >"$out/$1/$2"
}
pass="fuzz passphrase"

# ---- keys of every kind we hold, and one we do not (RSA) ----
"$openssl" genpkey -algorithm X25519 -out x25519.pem
"$openssl" genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem
"$openssl" genpkey -algorithm ML-KEM-768 -out mlkem768.pem
"$openssl" genpkey -algorithm ML-KEM-1024 -out mlkem1024.pem
"$openssl" genpkey -algorithm ML-DSA-87 -out mldsa.pem
"$openssl" genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa.pem 2>/dev/null
for k in x25519 p384 mlkem768 mlkem1024 mldsa rsa; do
  "$openssl" pkey -in $k.pem -pubout -outform DER -out $k.spki.der
  "$openssl" pkey -in $k.pem -pubout -out $k.spki.pem
done

# ---- public_key: SPKI PEM and DER ----
for k in x25519 p384 mlkem768 mlkem1024 mldsa rsa; do
  seed public_key $k.der "" $k.spki.der
  seed public_key $k.pem "" $k.spki.pem
done
"$openssl" ec -in p384.pem -pubout -conv_form compressed -outform DER -out p384c.der 2>/dev/null
seed public_key p384-compressed.der "" p384c.der
head -c 40 mldsa.spki.der >trunc.der
seed public_key truncated.der "" trunc.der
sed 's/PUBLIC KEY/PRIVATE KEY/' x25519.spki.pem >wrong-label.pem
seed public_key wrong-label.pem "" wrong-label.pem
: >empty
seed public_key empty "" empty

# ---- private_pem: flag (bit 0: passphrase given), PKCS#8 PEM ----
for k in x25519 p384 mlkem768 mlkem1024 mldsa rsa; do
  seed private_pem $k "00" $k.pem
done
for k in x25519 p384 mlkem1024 mldsa; do
  "$openssl" pkcs8 -topk8 -in $k.pem -v2 aes-256-cbc -v2prf hmacWithSHA256 -iter 1000 \
    -passout "pass:$pass" -out $k.enc.pem
  seed private_pem $k-encrypted "01" $k.enc.pem
done
seed private_pem encrypted-no-passphrase "00" x25519.enc.pem
"$openssl" pkcs8 -topk8 -in x25519.pem -v2 aes-256-cbc -iter 1000 -passout pass:other -out other.enc.pem
seed private_pem encrypted-wrong-passphrase "01" other.enc.pem
"$openssl" pkcs8 -topk8 -in x25519.pem -v1 PBE-SHA1-3DES -passout "pass:$pass" -out pbes1.enc.pem 2>/dev/null
seed private_pem encrypted-pbes1 "01" pbes1.enc.pem
"$openssl" ec -in p384.pem -out p384.trad.pem 2>/dev/null
seed private_pem ec-private-key "00" p384.trad.pem
seed private_pem empty "00" empty

# ---- x509: selector (bit 0: CRLs; bits 1-2: purpose), PEM bundle or DER ----
cat >ca.cnf <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
new_certs_dir = .
serial = serial
crlnumber = crlnumber
default_md = default
default_crl_days = 3650
policy = any
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:true, pathlen:1
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[v3_leaf]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:server.example, DNS:*.wild.example, IP:192.0.2.1, IP:2001:db8::1
authorityKeyIdentifier = keyid
EOF
: >index.txt
echo 01 >serial
echo 01 >crlnumber
for k in mldsa p384; do
  "$openssl" req -x509 -new -key $k.pem -subj "/CN=Fuzz $k CA" -days 3650 -config ca.cnf -extensions v3_ca -out ca-$k.pem
done
"$openssl" req -new -key mldsa.pem -subj "/CN=server.example" -config ca.cnf -out leaf.csr
"$openssl" x509 -req -in leaf.csr -CA ca-mldsa.pem -CAkey mldsa.pem -days 3650 -extfile ca.cnf -extensions v3_leaf \
  -set_serial 0x1234 -out leaf.pem
"$openssl" req -new -key p384.pem -subj "/CN=server.example/O=Fuzz/C=XX" -config ca.cnf -out leaf2.csr
"$openssl" x509 -req -in leaf2.csr -CA ca-p384.pem -CAkey p384.pem -days 3650 -extfile ca.cnf -extensions v3_leaf \
  -set_serial 7 -out leaf-p384.pem
for k in mldsa p384; do
  seed x509 ca-$k.pem "00" ca-$k.pem
  "$openssl" x509 -in ca-$k.pem -outform DER -out ca-$k.der
  seed x509 ca-$k.der "00" ca-$k.der
done
cat leaf.pem ca-mldsa.pem >chain.pem
seed x509 chain-server.pem "02" chain.pem
cat leaf-p384.pem ca-p384.pem >chain2.pem
seed x509 chain-p384-client.pem "04" chain2.pem
cat leaf.pem x25519.spki.pem >mixed.pem
seed x509 mixed-blocks.pem "00" mixed.pem
"$openssl" ca -config ca.cnf -revoke leaf-p384.pem -keyfile p384.pem -cert ca-p384.pem -batch 2>/dev/null
"$openssl" ca -config ca.cnf -gencrl -keyfile p384.pem -cert ca-p384.pem -out crl.pem -batch 2>/dev/null
seed x509 crl.pem "01" crl.pem
"$openssl" crl -in crl.pem -outform DER -out crl.der
seed x509 crl.der "01" crl.der
seed x509 empty "00" empty

# ---- mlkem: selector (bit 0: ML-KEM-768; bit 1: decapsulate), key or ciphertext ----
tail -c 1568 mlkem1024.spki.der >ek1024
tail -c 1184 mlkem768.spki.der >ek768
seed mlkem ek-1024 "00" ek1024
seed mlkem ek-768 "01" ek768
head -c 1568 /dev/urandom >ct1024
head -c 1088 /dev/urandom >ct768
seed mlkem ct-1024 "02" ct1024
seed mlkem ct-768 "03" ct768
head -c 1568 /dev/zero | tr '\0' '\377' >ff1568
seed mlkem ek-1024-out-of-range "00" ff1568
head -c 100 ek1024 >short
seed mlkem ek-short "00" short

# ---- mldsa: pk, context length, context, signature, message ----
tail -c 2592 mldsa.spki.der >pk
printf 'a CertificateVerify transcript' >msg
"$openssl" pkeyutl -sign -inkey mldsa.pem -rawin -in msg -out sig
{ cat pk; printf '\x00'; cat sig; cat msg; } >mldsa-valid
seed mldsa valid "" mldsa-valid
printf 'quantum-tunnel' >ctx
if "$openssl" pkeyutl -sign -inkey mldsa.pem -rawin -in msg -pkeyopt "hexcontext-string:$(xxd -p ctx | tr -d '\n')" \
  -out sig2 2>/dev/null; then
  { cat pk; printf '\x0e'; cat ctx; cat sig2; cat msg; } >mldsa-ctx
  seed mldsa valid-context "" mldsa-ctx
fi
{ cat pk; printf '\x00'; head -c 100 sig; } >mldsa-short
seed mldsa short-signature "" mldsa-short
head -c 2000 pk >pk-short
seed mldsa short-key "" pk-short

# ---- ecdh: a 97-byte uncompressed P-384 point ----
tail -c 97 p384.spki.der >point
seed ecdh valid "" point
{ printf '\x04'; head -c 96 /dev/zero; } >zero-point
seed ecdh zero "" zero-point
{ printf '\x06'; tail -c 96 point; } >hybrid-form
seed ecdh hybrid-form "" hybrid-form

# ---- hybrid: selector (bit 0: X25519+ML-KEM-768; bit 1: decapsulate), the share ----
tail -c 32 x25519.spki.der >xpk
cat xpk ek1024 >cs1024
cat xpk ek768 >cs768
seed hybrid client-share-1024 "00" cs1024
seed hybrid client-share-768 "01" cs768
cat xpk ct1024 >ss1024
cat xpk ct768 >ss768
seed hybrid server-share-1024 "02" ss1024
seed hybrid server-share-768 "03" ss768
{ head -c 32 /dev/zero; cat ek1024; } >low-order
seed hybrid low-order-x25519 "00" low-order

echo "[fuzz-native] seeds written to $out" >&2
