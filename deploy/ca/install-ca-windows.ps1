<#
.SYNOPSIS
  Trust the Greenroom interception CA on Windows (Local Machine "Trusted Root Certification Authorities").

.DESCRIPTION
  Run in an elevated PowerShell:
      powershell -ExecutionPolicy Bypass -File install-ca-windows.ps1 -Path greenroom-ca.pem
      powershell -ExecutionPolicy Bypass -File install-ca-windows.ps1 -Path greenroom-ca.pem -Remove
  At scale use Group Policy (Computer Configuration > Policies > Windows Settings > Security Settings >
  Public Key Policies > Trusted Root Certification Authorities > Import) or Intune (a "Trusted
  certificate" profile). Edge and Chrome use this store; Firefox needs its own policy (README.md);
  CLI tools and SDKs need the environment described in README.md.
  Without PowerShell's PKI module:  certutil -addstore -f Root greenroom-ca.pem
#>
param(
    [Parameter(Mandatory = $true)][string]$Path,
    [switch]$Remove
)
$ErrorActionPreference = "Stop"

$text = Get-Content -Raw -Path $Path
if ($text -match "PRIVATE KEY") { throw "$Path holds a private key: install the certificate only (greenroom ca path)" }
$cert = New-Object System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (Resolve-Path $Path).Path

if ($Remove) {
    Get-ChildItem Cert:\LocalMachine\Root | Where-Object { $_.Thumbprint -eq $cert.Thumbprint } | Remove-Item
    Write-Host "Removed $($cert.Subject) ($($cert.Thumbprint))"
    exit 0
}

if (Get-Command Import-Certificate -ErrorAction SilentlyContinue) {
    Import-Certificate -FilePath $Path -CertStoreLocation Cert:\LocalMachine\Root | Out-Null
} else {
    certutil.exe -addstore -f Root $Path | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "certutil -addstore failed ($LASTEXITCODE)" }
}
Write-Host "Trusted $($cert.Subject), SHA-1 thumbprint $($cert.Thumbprint)"
