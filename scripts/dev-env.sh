# Sourced by the run and test scripts: development defaults for the JWT settings, so a fresh
# clone works with no configuration. Real deployments set their own values.
: "${SIGNOFF_JWT_HS256_SECRET:=dev-only-secret-change-me-0123456789abcdef}"
: "${SIGNOFF_JWT_ISSUER:=signoff-dev}"
: "${SIGNOFF_JWT_AUDIENCE:=signoff}"
export SIGNOFF_JWT_HS256_SECRET SIGNOFF_JWT_ISSUER SIGNOFF_JWT_AUDIENCE
