//! Validation rules and deterministic rendering of the deployment bundle (see issue "Deployment bundle").
