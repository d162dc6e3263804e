; Inno Setup script for the Windows installer (iscc dist\windows\unclip.iss, run from the
; repository root after `cargo build --release`; the CI workflow does both). It installs
; the installed layout: {app}\bin\unclip.exe finds {app}\share\unclip\model, the same
; relative path as the Linux packages. Not built on the project's Linux machines.
#define Version GetEnv("UNCLIP_VERSION")
#if Version == ""
  #define Version "0.1.0"
#endif

[Setup]
AppId={{6D3B1E52-7C1F-4E0A-9B53-0C8C1A2F7E11}
AppName=unclip
AppVersion={#Version}
AppPublisher=unclip authors
DefaultDirName={autopf}\unclip
DefaultGroupName=unclip
OutputDir=..\..\target\dist
OutputBaseFilename=unclip-{#Version}-windows-setup
SetupIconFile=..\icons\unclip.ico
UninstallDisplayIcon={app}\share\unclip\unclip.ico
Compression=lzma2
SolidCompression=yes
ArchitecturesInstallIn64BitMode=x64compatible
ChangesAssociations=yes

[Files]
Source: "..\..\target\release\unclip.exe"; DestDir: "{app}\bin"
Source: "..\..\assets\model\*"; DestDir: "{app}\share\unclip\model"; Flags: recursesubdirs
Source: "..\icons\unclip.ico"; DestDir: "{app}\share\unclip"
Source: "..\..\README.md"; DestDir: "{app}\share\doc\unclip"

[Icons]
Name: "{group}\unclip"; Filename: "{app}\bin\unclip.exe"; IconFilename: "{app}\share\unclip\unclip.ico"
Name: "{autodesktop}\unclip"; Filename: "{app}\bin\unclip.exe"; IconFilename: "{app}\share\unclip\unclip.ico"; Tasks: desktopicon

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked

[Registry]
; "Open with unclip" for the image types the app reads (one image: variations).
Root: HKA; Subkey: "Software\Classes\Applications\unclip.exe\shell\open\command"; ValueType: string; ValueData: """{app}\bin\unclip.exe"" ""%1"""; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\unclip.exe\SupportedTypes"; ValueType: string; ValueName: ".png"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\unclip.exe\SupportedTypes"; ValueType: string; ValueName: ".jpg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\unclip.exe\SupportedTypes"; ValueType: string; ValueName: ".jpeg"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\Applications\unclip.exe\SupportedTypes"; ValueType: string; ValueName: ".webp"; ValueData: ""
Root: HKA; Subkey: "Software\Classes\.png\OpenWithList\unclip.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\.jpg\OpenWithList\unclip.exe"; ValueType: string; ValueData: ""; Flags: uninsdeletekey
