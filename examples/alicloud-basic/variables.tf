variable "region" {
  description = "Alibaba Cloud region."
  type        = string
  default     = "ap-southeast-1"
}

variable "ssh_key_path" {
  description = "Private RSA key (ssh-keygen -t rsa -b 4096 -f ~/.ssh/cloudcode_rsa); the public key is <path>.pub. Alibaba Cloud key pairs do not accept ed25519."
  type        = string
  default     = "~/.ssh/cloudcode_rsa"
}

variable "ssh_allowed_cidrs" {
  description = "Who may reach SSH: at least the address Terraform runs from, e.g. [\"203.0.113.7/32\"] (curl -s https://checkip.amazonaws.com)."
  type        = list(string)
}

variable "admin_email" {
  description = "Your e-mail: the login's identity and the ACME account."
  type        = string
}

variable "admin_password" {
  description = "Login password (12+ characters). Set TF_VAR_admin_password; it is never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "llm_provider" {
  description = "openai, anthropic, gemini or openai_compatible."
  type        = string
  default     = "openai"
}

variable "llm_api_key" {
  description = "The LLM provider's API key. Set TF_VAR_llm_api_key; it is never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "running" {
  description = "false suspends the instance (StopCharging), true resumes it (also after an idle suspend). Null (default): running, but a box that suspended itself for idleness stays stopped."
  type        = bool
  default     = null
}

variable "idle_suspend_after" {
  description = "Stop the box (StopCharging) once nobody has used it for this long, e.g. \"2h\"; null (default): never."
  type        = string
  default     = null
}
