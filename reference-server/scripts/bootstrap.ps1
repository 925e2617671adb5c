# Guardrail temporary-machine bootstrap for Windows PowerShell 5.1 and PowerShell 7.
#
# Generates an Ed25519 key pair on this machine, registers its public key with the server, and
# writes identity.json and private.pem under
# $env:SIKKERKEY_HOME (default: $HOME\.sikkerkey)\vaults\<vault id>\, readable by the current
# user only. The private key never leaves this machine. Any failed step stops the script and
# leaves no identity behind.
#
# .NET has no built-in Ed25519, so the key is made with openssl, which must be on PATH (it
# ships with Git for Windows, or install OpenSSL 3).
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version 2.0

$VaultId = __GUARDRAIL_VAULT_ID__
$Token = __GUARDRAIL_TOKEN__
$ApiUrl = __GUARDRAIL_API_URL__

function Fail([string]$Message) {
    throw "guardrail bootstrap: $Message"
}

if (-not (Get-Command Invoke-RestMethod -ErrorAction SilentlyContinue)) {
    Fail 'Invoke-RestMethod is not available: use PowerShell 5.1 or later'
}
if (-not (Get-Command openssl -ErrorAction SilentlyContinue)) {
    Fail 'openssl was not found on PATH: install OpenSSL 3 (or Git for Windows) and run the command again'
}

if ($env:SIKKERKEY_HOME) { $BaseDir = $env:SIKKERKEY_HOME } else { $BaseDir = Join-Path $HOME '.sikkerkey' }
$VaultDir = Join-Path (Join-Path $BaseDir 'vaults') $VaultId
$IdentityPath = Join-Path $VaultDir 'identity.json'
$KeyPath = Join-Path $VaultDir 'private.pem'
if ((Test-Path -LiteralPath $IdentityPath) -or (Test-Path -LiteralPath $KeyPath)) {
    Fail "an identity for vault $VaultId already exists in ${VaultDir}: remove it first to register this machine again"
}

function Restrict-ToCurrentUser([string]$Path, [bool]$IsFolder) {
    $user = [System.Security.Principal.WindowsIdentity]::GetCurrent().User
    $acl = New-Object System.Security.AccessControl.FileSecurity
    if ($IsFolder) { $acl = New-Object System.Security.AccessControl.DirectorySecurity }
    $acl.SetAccessRuleProtection($true, $false)
    $inherit = [System.Security.AccessControl.InheritanceFlags]::None
    if ($IsFolder) { $inherit = [System.Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit' }
    $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($user, 'FullControl', $inherit, 'None', 'Allow')
    $acl.AddAccessRule($rule)
    Set-Acl -LiteralPath $Path -AclObject $acl
}

$WorkDir = Join-Path ([System.IO.Path]::GetTempPath()) ("guardrail-" + [System.Guid]::NewGuid().ToString('N'))
$StagedKey = $null
$StagedIdentity = $null
try {
    New-Item -ItemType Directory -Path $WorkDir | Out-Null
    Restrict-ToCurrentUser $WorkDir $true
    $WorkKey = Join-Path $WorkDir 'private.pem'
    $WorkDer = Join-Path $WorkDir 'public.der'

    & openssl genpkey -algorithm Ed25519 -out $WorkKey 2>$null
    if ($LASTEXITCODE -ne 0) { Fail 'openssl cannot generate an Ed25519 key (OpenSSL 3 is needed)' }
    & openssl pkey -in $WorkKey -pubout -outform DER -out $WorkDer 2>$null
    if ($LASTEXITCODE -ne 0) { Fail 'openssl cannot extract the public key' }

    # An Ed25519 SubjectPublicKeyInfo is 44 bytes: a fixed 12-byte header, then the raw key.
    $der = [System.IO.File]::ReadAllBytes($WorkDer)
    $header = [System.BitConverter]::ToString($der, 0, [Math]::Min(12, $der.Length)).Replace('-', '').ToLowerInvariant()
    if ($der.Length -ne 44 -or $header -ne '302a300506032b6570032100') {
        Fail "openssl wrote an unexpected public key encoding ($($der.Length) bytes)"
    }
    $raw = New-Object byte[] 32
    [System.Array]::Copy($der, 12, $raw, 0, 32)
    $publicKey = [System.Convert]::ToBase64String($raw)

    $body = @{ token = $Token; publicKey = $publicKey; hostname = [System.Environment]::MachineName } | ConvertTo-Json -Compress
    try {
        $response = Invoke-RestMethod -Method Post -Uri "$ApiUrl/v1/$VaultId/temp-bootstrap/register" `
            -ContentType 'application/json' -Body $body -UseBasicParsing
    } catch {
        $message = $_.Exception.Message
        if ($_.ErrorDetails -and $_.ErrorDetails.Message) {
            try { $message = ($_.ErrorDetails.Message | ConvertFrom-Json).error } catch { $message = $_.ErrorDetails.Message }
        }
        Fail "registration failed: $message"
    }

    if (-not ($response.machineId -match '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')) {
        Fail 'the server answered with an invalid machineId'
    }
    if (-not $response.machineName) { Fail 'the server answered without a machineName' }
    if ($response.vaultId -ne $VaultId) { Fail "the server answered for another vault: $($response.vaultId)" }
    $answeredUrl = [string]$response.apiUrl
    if (-not ($answeredUrl.StartsWith('https://') -or $answeredUrl -eq 'http://localhost' -or $answeredUrl.StartsWith('http://localhost:'))) {
        Fail "the server answered with an apiUrl that clients do not accept: $answeredUrl"
    }

    New-Item -ItemType Directory -Force -Path $VaultDir | Out-Null
    Restrict-ToCurrentUser $VaultDir $true
    $VaultDir = (Resolve-Path -LiteralPath $VaultDir).ProviderPath
    $KeyPath = Join-Path $VaultDir 'private.pem'
    $IdentityPath = Join-Path $VaultDir 'identity.json'

    $StagedKey = Join-Path $VaultDir ".private.pem.$PID"
    $StagedIdentity = Join-Path $VaultDir ".identity.json.$PID"
    Copy-Item -LiteralPath $WorkKey -Destination $StagedKey
    Restrict-ToCurrentUser $StagedKey $false
    $identity = [ordered]@{
        machineId = [string]$response.machineId
        machineName = [string]$response.machineName
        vaultId = $VaultId
        apiUrl = $answeredUrl
        privateKeyPath = $KeyPath
    }
    $utf8 = New-Object System.Text.UTF8Encoding($false)
    [System.IO.File]::WriteAllText($StagedIdentity, ($identity | ConvertTo-Json), $utf8)
    Restrict-ToCurrentUser $StagedIdentity $false

    if ((Test-Path -LiteralPath $IdentityPath) -or (Test-Path -LiteralPath $KeyPath)) {
        Fail "an identity for vault $VaultId appeared in $VaultDir meanwhile: it was left as it is"
    }
    Move-Item -LiteralPath $StagedKey -Destination $KeyPath
    $StagedKey = $null
    try {
        Move-Item -LiteralPath $StagedIdentity -Destination $IdentityPath
    } catch {
        Remove-Item -LiteralPath $KeyPath -Force -ErrorAction SilentlyContinue
        Fail 'cannot move identity.json into place'
    }
    $StagedIdentity = $null

    Write-Host "Registered machine $($identity.machineName) ($($identity.machineId)) in vault $VaultId; it waits for approval."
    Write-Host "Identity written to $VaultDir"
} finally {
    Remove-Item -LiteralPath $WorkDir -Recurse -Force -ErrorAction SilentlyContinue
    if ($StagedKey) { Remove-Item -LiteralPath $StagedKey -Force -ErrorAction SilentlyContinue }
    if ($StagedIdentity) { Remove-Item -LiteralPath $StagedIdentity -Force -ErrorAction SilentlyContinue }
}
