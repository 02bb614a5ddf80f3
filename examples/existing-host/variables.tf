variable "host" {
  description = "The machine's address."
  type        = string
}

variable "ssh_user" {
  description = "root, or a user with password-less sudo."
  type        = string
  default     = "root"
}

variable "private_key_path" {
  description = "SSH private key (any type the machine accepts, ed25519 included)."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

variable "domain" {
  description = "The site's name (and auth.<name>) pointing at the machine; empty for <a-b-c-d>.sslip.io."
  type        = string
  default     = ""
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
  default     = null
}

variable "llm_base_url" {
  description = "OpenAI-compatible API base URL (https)."
  type        = string
  default     = "https://openrouter.ai/api/v1"
}

variable "llm_model" {
  description = "Model name at that API."
  type        = string
  default     = null
}

variable "llm_api_key" {
  description = "API key (TF_VAR_llm_api_key); never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}
