#include "identity_support.h"

namespace kura::e2e {

using nlohmann::json;

std::string TotpNow(const std::string& secret_base32, int offset) {
  const std::string script =
      "import base64,hmac,hashlib,struct,sys,time\n"
      "s=sys.argv[1]; k=base64.b32decode(s+'='*(-len(s)%8))\n"
      "c=int(time.time())//30+int(sys.argv[2])\n"
      "h=hmac.new(k,struct.pack('>Q',c),hashlib.sha1).digest()\n"
      "o=h[-1]&15\n"
      "print('%06d'%((struct.unpack('>I',h[o:o+4])[0]&0x7fffffff)%1000000))\n";
  ProcessResult r = RunProcess({"python3", "-c", script, secret_base32, std::to_string(offset)});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::string code = r.out;
  while (!code.empty() && (code.back() == '\n' || code.back() == '\r')) code.pop_back();
  return code;
}

SignedIn MakeStaff(KuraServer& server, const std::string& creator, const std::string& name,
                   const std::vector<std::string>& roles) {
  HttpClient& http = server.http();
  SignedIn out;
  HttpResponse r =
      http.Post("/v1/sys/staff", {{"username", name}, {"roles", roles}, {"password", kStaffPassword}}, creator);
  EXPECT_EQ(r.status, 201) << r.Describe();
  r = http.Post("/v1/auth/login", {{"username", name}, {"password", kStaffPassword}});
  EXPECT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json.value("restriction", json()), "totp_enrollment") << r.Describe();
  out.token = r.json.value("token", "");
  r = http.Post("/v1/auth/totp/enroll", json::object(), out.token);
  EXPECT_EQ(r.status, 200) << r.Describe();
  out.totp_secret = r.json.value("secret", "");
  out.confirm_code = TotpNow(out.totp_secret);
  r = http.Post("/v1/auth/totp/confirm", {{"code", out.confirm_code}}, out.token);
  EXPECT_EQ(r.status, 200) << r.Describe();
  out.recovery_codes = r.json.value("recovery_codes", json::array());
  return out;
}

std::string SignInUser(KuraServer& server, const std::string& tenant, const std::string& name) {
  HttpResponse r =
      server.http().Post("/v1/auth/login", {{"username", name}, {"password", kUserPassword}, {"tenant", tenant}});
  EXPECT_EQ(r.status, 200) << r.Describe();
  return r.json.value("token", "");
}

}  // namespace kura::e2e
