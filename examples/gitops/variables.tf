variable "region" {
  description = "Alibaba Cloud region."
  type        = string
  default     = "ap-southeast-1"
}

variable "name" {
  description = "Deployment name (resource prefix, snapshot stack name)."
  type        = string
  default     = "cloudcode"
}

variable "ssh_public_key" {
  description = "RSA public key (not secret: may live in cloudcode.auto.tfvars)."
  type        = string
}

variable "private_key_path" {
  description = "Where the CI job writes the private key from its secret."
  type        = string
  default     = "/tmp/cloudcode_ssh_key"
}

variable "ssh_allowed_cidrs" {
  description = "SSH sources: your address and the CI runners' egress (GitHub-hosted runners change addresses; a self-hosted runner with a fixed address is safer)."
  type        = list(string)
}

variable "domain" {
  description = "The site's name in Alibaba Cloud DNS; empty for sslip.io."
  type        = string
  default     = ""
}

variable "admin_email" {
  description = "Your e-mail."
  type        = string
}

variable "admin_password" {
  description = "From the CI secret via TF_VAR_admin_password; needed only when admin_password_version changes (and on the first apply)."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "admin_password_version" {
  description = "Bump in a pull request after rotating the password secret."
  type        = number
  default     = 1
}

variable "llm_provider" {
  description = "openai, anthropic, gemini or openai_compatible."
  type        = string
  default     = "openai"
}

variable "llm_api_key" {
  description = "From the CI secret via TF_VAR_llm_api_key."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}

variable "llm_api_key_version" {
  description = "Bump after rotating the API key secret."
  type        = number
  default     = 1
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
