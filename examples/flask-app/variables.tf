variable "host" {
  description = "The machine's address."
  type        = string
}

variable "private_key_path" {
  description = "SSH private key."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

variable "domain" {
  description = "The site's name; api.<domain> and auth.<domain> must point at the machine too."
  type        = string
}

variable "admin_email" {
  description = "Your e-mail."
  type        = string
}

variable "admin_password" {
  description = "Login password (TF_VAR_admin_password); never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "llm_api_key" {
  description = "Anthropic API key (TF_VAR_llm_api_key); never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
}

variable "database_url" {
  description = "The API's DATABASE_URL (TF_VAR_database_url): a secret env, never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
}
