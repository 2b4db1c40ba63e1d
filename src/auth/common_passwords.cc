#include "auth/common_passwords.h"

#include <algorithm>
#include <array>
#include <string>

namespace kura::auth {
namespace {

// The passwords attackers try first: the top of the published leak-frequency
// lists, keyboard walks, digit runs, and their common extensions to 12 and
// more characters (a minimum length alone lets "password1234" through).
// Lower case, sorted byte-wise (checked at compile time below), so a lookup
// is a binary search over the lower-cased candidate.
// clang-format off
constexpr std::array<std::string_view, 536> kCommonPasswords = {
    "!qaz2wsx", "!qaz2wsx#edc4rfv", "!qaz@wsx#edc", "000000", "00000000", "000000000",
    "0000000000", "000000000000", "0987654321", "098765432109", "0987654321qwerty", "1111",
    "11111", "111111", "1111111", "11111111", "111111111", "1111111111", "111111111111", "112233",
    "112233112233", "11223344", "1122334455", "112233445566", "121212", "121212121212", "123123",
    "123123123", "123123123123", "123321", "1234", "12341234", "123412341234", "12344321", "12345",
    "1234512345", "12345123451234", "1234554321", "123456", "1234567", "12345678", "123456789",
    "1234567890", "123456789012", "1234567890123", "12345678901234", "1234567890qwerty",
    "12345678910", "1234567891011", "123456789101112", "123456789abc", "123456a", "123456q",
    "123456qwerty", "12345qwert", "1234abcd", "1234qwer", "1234qwerasdf", "1234zxcv", "123654",
    "123abc", "123qwe", "123qweasdzxc", "12qwaszx12qwaszx", "131313", "147258", "147258369",
    "147852369", "159357", "159753", "1a2b3c", "1a2b3c4d", "1q2w3e", "1q2w3e4r",
    "1q2w3e4r1q2w3e4r", "1q2w3e4r5t", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u", "1q2w3e4r5t6y7u8i",
    "1q2w3e4r5t6y7u8i9o0p", "1qaz!qaz1qaz!qaz", "1qaz1qaz", "1qaz2wsx", "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv", "1qaz@wsx", "1qaz@wsx3edc", "1qazxsw2", "1qazxsw23edc", "2000", "2wsx3edc",
    "321654987", "3edc4rfv", "555555", "654321", "654321a", "666666", "696969", "741852963",
    "7654321", "777777", "7777777", "789456123", "87654321", "963852741", "987654321",
    "987654321098", "a123456", "a12345678", "a1b2c3", "a1b2c3d4", "a1b2c3d4e5f6", "aa123456",
    "aaaaaa", "aaaaaaaa", "aaaaaaaaaa", "aaaaaaaaaaaa", "abababababab", "abc123", "abc1234",
    "abc123456789", "abc123abc123", "abcabcabcabc", "abcd1234", "abcd12345678", "abcdef",
    "abcdefg", "abcdefg12345", "abcdefgh", "abcdefgh1234", "abcdefghijkl", "access", "admin",
    "admin123", "admin1234567", "admin12345678", "adminadmin", "adminadmin123", "administrador",
    "administrator", "administrator1", "administrator123", "amanda", "andrew", "andrew1", "angel",
    "angel1", "angels", "apple", "april", "arsenal", "asdf", "asdf1234", "asdfasdf",
    "asdfasdfasdf", "asdfg", "asdfgh", "asdfghjkl", "asdfghjkl123", "asdqwe123", "asdzxc",
    "ashley", "ashley1", "august", "austin", "autumn2024", "azerty", "azerty123", "azertyuiop",
    "banana", "barcelona", "baseball", "baseball1", "baseball123", "baseball1234", "basketball",
    "batman", "batman1", "batterystaple", "biteme", "blahblah", "blessed", "blessing", "bmw",
    "buster", "buster1", "camaro", "changeme", "changeme123", "changeme1234", "changemenow",
    "changethispassword", "charlie", "charlie1", "cheese", "chelsea", "chelsea1", "chocolate",
    "christ", "computer", "computer1", "computer1234", "contrasena", "cookie", "correcthorse",
    "correcthorsebatterystaple", "corvette", "dallas", "daniel", "daniel1", "december", "default",
    "defaultpassword", "diamond", "dragon", "dragon1", "dragon123", "dragon123456", "facebook",
    "faith", "february", "ferrari", "flower", "football", "football1", "football123",
    "football1234", "football12345", "fortnite", "freedom", "friday", "george", "ginger", "golden",
    "golf", "golfer", "google", "guest", "harley", "harley1", "hello", "hello123", "hellohello",
    "hockey", "hockey123", "honda", "hunter", "hunter123", "hunter2", "ihateyou", "ihateyou1234",
    "iloveu", "iloveyou", "iloveyou!", "iloveyou1", "iloveyou123", "iloveyou1234", "iloveyou12345",
    "iloveyou2", "iloveyoubaby", "iloveyouforever", "iloveyouiloveyou", "iloveyousomuch",
    "instagram", "internet", "internet1234", "ironman", "january", "jennifer", "jennifer1",
    "jessica", "jessica1", "jesus", "jesus1", "jesuschrist", "jordan", "jordan23", "joshua",
    "joshua1", "killer", "killer123", "klaster", "letmein", "letmein!letmein", "letmein1",
    "letmein123", "letmein12345", "letmein123456", "letmeinletmein", "letmeinnow", "letmeinplease",
    "linkedin", "liverpool", "lkjhgfdsa", "love", "love123", "lovely", "loveme", "lover",
    "loveyou", "loveyouforever", "maggie", "march", "master", "master1", "master123",
    "masterpassword", "matrix", "matrix1", "matthew", "mercedes", "michael", "michael1",
    "michelle", "michelle1", "microsoft", "minecraft", "minecraft1", "minecraft123",
    "minecraft1234", "mnbvcxz", "mobilemail", "mom", "monday", "monitor", "monitoring", "monkey",
    "monkey1", "monkey123", "monkey123456", "montana", "moon", "moscow", "motdepasse", "mustang",
    "mustang1", "mypassword", "mypassword1", "mypassword123", "naruto", "newpassword",
    "newpassword1", "newpassword123", "nicole", "nicole1", "nothing", "nothing12345", "november",
    "october", "opensesame", "orange", "p@$$w0rd", "p@55w0rd", "p@ssw0rd", "p@ssw0rd123",
    "p@ssw0rd1234", "p@ssword123", "p@ssword1234", "pass", "pass1234", "pass12345678",
    "passpass1234", "passw0rd", "passw0rd123", "passw0rd1234", "password", "password!",
    "password!123", "password#123", "password0000", "password01", "password1", "password1111",
    "password12", "password123", "password123!", "password1234", "password1234!", "password12345",
    "password123456", "password2", "password2020", "password2021", "password2022", "password2023",
    "password2024", "password2025", "password3", "password@123", "passwordpassword", "passwort",
    "passwort123", "pepper", "poiuytrewq", "pokemon", "pokemon1", "pokemon12345", "porsche",
    "princess", "princess1", "princess1234", "purple", "q123456", "q1w2e3r4", "q1w2e3r4t5",
    "q1w2e3r4t5y6", "q1w2e3r4t5y6u7", "qazwsx", "qazwsx123", "qazwsx1234", "qazwsxedc",
    "qazwsxedcrfv", "qazxsw", "qqqqqqqqqqqq", "qwe123", "qwe123qwe123", "qweasd", "qweasdzxc",
    "qweasdzxc123", "qwer1234", "qwerasdfzxcv", "qwert", "qwert123", "qwert12345", "qwerty",
    "qwerty1", "qwerty123", "qwerty123456", "qwerty1234567", "qwerty1234567890", "qwertyqwerty",
    "qwertyu", "qwertyui", "qwertyuiop", "qwertyuiop12", "qwertyuiop123", "qwertyuiopasdfghjkl",
    "qwertyuiopasdfghjklzxcvbnm", "qwertz", "qwertz123", "ranger", "realmadrid", "robert",
    "roblox", "rockstar", "root", "samsung", "secret", "secret123", "secret1234", "secret12345",
    "secretpassword", "senha", "september", "shadow", "shadow1", "shadow123", "silver", "soccer",
    "soccer123", "spiderman", "spring2024", "starwars", "starwars1", "starwars1234", "summer",
    "summer123", "summer2024", "summer2025", "sunday", "sunshine", "sunshine1", "sunshine1234",
    "superman", "superman1", "superman1234", "supersecret", "supersecretpassword", "superstar",
    "taylor", "tennis", "test", "test123", "testing", "thisisapassword", "thisismypassword",
    "thomas", "thunder", "tigger", "tigger1", "toor", "topsecret", "trustno1", "trustno11234",
    "trustno1trustno1", "trustno2", "trustnoone", "twitter", "unknownpassword", "verysecret",
    "welcome", "welcome1", "welcome123", "welcome1234", "welcome12345", "welcome123456",
    "welcome2024", "welcome2025", "welcometothejungle", "welcomewelcome", "whatever", "whatever1",
    "whatever1234", "windows", "winter123", "winter2024", "winter2025", "wolverine", "yamaha",
    "yankees", "yellow", "youtube", "ytrewq", "zaq12wsx", "zaq12wsxcde3", "zaq1xsw2", "zaq1zaq1",
    "zaqxswcde", "zxcv1234", "zxcvb", "zxcvbn", "zxcvbnm", "zxcvbnm123", "zxcvbnm12345",
    "zxcvbnm123456", "zzzzzzzzzzzz",
};
// clang-format on

static_assert(std::is_sorted(kCommonPasswords.begin(), kCommonPasswords.end()),
              "kCommonPasswords must stay sorted for the binary search");
static_assert(std::adjacent_find(kCommonPasswords.begin(), kCommonPasswords.end()) == kCommonPasswords.end(),
              "kCommonPasswords must not repeat an entry");

constexpr std::size_t kMaxCommonPasswordLength = [] {
  std::size_t longest = 0;
  for (std::string_view entry : kCommonPasswords) longest = std::max(longest, entry.size());
  return longest;
}();

}  // namespace

bool IsCommonPassword(std::string_view password) {
  // Longer than any entry: not on the list (and no copy of a huge input).
  if (password.size() > kMaxCommonPasswordLength) return false;
  std::string lower(password);
  // ASCII folding only: every entry is ASCII, and a non-ASCII byte can never
  // match one.
  for (char& c : lower) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return std::binary_search(kCommonPasswords.begin(), kCommonPasswords.end(), std::string_view(lower));
}

std::size_t CommonPasswordCountForTest() { return kCommonPasswords.size(); }

}  // namespace kura::auth
