variable "region" {
  description = "Alibaba Cloud region."
  type        = string
  default     = "ap-southeast-1"
}

variable "instance_type" {
  description = "ECS instance type."
  type        = string
  default     = "ecs.e-c1m2.large"
}

variable "domain" {
  description = "The site's name, e.g. oc.example.com; auth.<domain> serves the login."
  type        = string
}

variable "manage_dns" {
  description = "true when the domain is in Alibaba Cloud DNS in this account."
  type        = bool
  default     = true
}

variable "ssh_key_path" {
  description = "Private RSA key; the public key is <path>.pub."
  type        = string
  default     = "~/.ssh/cloudcode_rsa"
}

variable "ssh_allowed_cidrs" {
  description = "Who may reach SSH, including where Terraform runs."
  type        = list(string)
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

variable "llm_api_key" {
  description = "Anthropic API key (TF_VAR_llm_api_key); never stored."
  type        = string
  sensitive   = true
  ephemeral   = true
  default     = null
}
