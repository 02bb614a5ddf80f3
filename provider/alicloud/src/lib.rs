//! Alibaba Cloud ECS client: ACS3-HMAC-SHA256 signer, RPC calls, retries.
